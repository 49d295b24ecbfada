#!/usr/bin/env bash
# Tocsin and Prometheus Alertmanager side by side, in one run, on this machine's
# loopback. Usage: bench/run.sh [seconds-per-scenario]   (needs prometheus-alertmanager)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-10}"
BIN=target/release/tocsin
cargo build --release -q
command -v prometheus-alertmanager >/dev/null || { echo "apt-get install prometheus-alertmanager" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

TOCSIN_PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$TOCSIN_PORT" --data-dir "$WORK/tocsin" --log-level warn --ingest-rate-per-key 0 2> "$WORK/tocsin.err" &
TOCSIN_PID=$!; PIDS+=("$TOCSIN_PID")
for _ in $(seq 100); do grep -q "listening" "$WORK/tocsin.err" && break; sleep 0.1; done
TOKEN=$(grep -o 'TOCSIN_TOKEN=.*' "$WORK/tocsin.err" | cut -d= -f2)
URL="http://127.0.0.1:$TOCSIN_PORT"
api() { curl -sf -X POST "$URL$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2"; }
key() { api "/api/v1/services" "{\"name\": \"$1\"}" >/dev/null
        api "/api/v1/services/$2/integration-keys" '{"name": "bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }
PD_KEY=$(key pagerduty 1); AM_KEY=$(key alertmanager 2); RATE_KEY=$(key latency 3); MEM_KEY=$(key memory 4)
STORM_KEY=$(key storm 5)
# The storm service groups its alerts (by severity: here, all of them) into one incident.
curl -sf -X PUT "$URL/api/v1/services/5/alert-rules" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"grouping": {"mode": "by_key", "key": "{{ severity }}", "window_minutes": 60}}' >/dev/null

AM_PORT=$(free_port)
cat > "$WORK/am.yml" <<YAML
route: { receiver: blackhole }
receivers: [ { name: blackhole } ]
YAML
prometheus-alertmanager --config.file="$WORK/am.yml" --storage.path="$WORK/am" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=warn 2>/dev/null &
AM_PID=$!; PIDS+=("$AM_PID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null && break; sleep 0.1; done
AM_URL="http://127.0.0.1:$AM_PORT"

run() { echo "== $1"; shift; "$BIN" bench --seconds "$SECONDS_EACH" "$@"; }
echo "machine: $(nproc) cores, $(uname -r); tocsin $(git rev-parse --short HEAD); $(prometheus-alertmanager --version 2>&1 | head -1)"
for round in 1 2 3; do
  run "Tocsin, single events (PagerDuty Events v2), 1000 alert identities, round $round" --scenario pagerduty --url "$URL" --key "$PD_KEY" --connections 64
  run "Alertmanager, single alerts (POST /api/v2/alerts), round $round" --scenario alertmanager-api --url "$AM_URL" --batch 1 --connections 64
done
for round in 1 2 3; do
  run "Tocsin, 100 alerts per request (Alertmanager webhook), round $round" --scenario alertmanager-webhook --url "$URL" --key "$AM_KEY" --batch 100 --connections 16
  run "Alertmanager, 100 alerts per request (POST /api/v2/alerts), round $round" --scenario alertmanager-api --url "$AM_URL" --batch 100 --connections 16
done
run "Tocsin, latency at 5,000 events/s (open loop), cold: the first 1000 open new alerts and incidents" --scenario pagerduty --url "$URL" --key "$RATE_KEY" --rate 5000 --connections 64
run "Tocsin, latency at 5,000 events/s (open loop), warm: the same 1000 alerts repeating" --scenario pagerduty --url "$URL" --key "$RATE_KEY" --rate 5000 --connections 64
run "Tocsin, latency at 5,000 events/s (open loop), storm: 1000 new alerts grouped into one incident, then repeating" --scenario pagerduty --url "$URL" --key "$STORM_KEY" --rate 5000 --connections 64
echo "== Resident memory with 100,000 active alerts"
"$BIN" bench --scenario alertmanager-webhook --url "$URL" --key "$MEM_KEY" --batch 100 --keys 100000 --requests 1000 --seconds 600 --connections 8 >/dev/null
"$BIN" bench --scenario alertmanager-api --url "$AM_URL" --batch 100 --keys 100000 --requests 1000 --seconds 600 --connections 8 >/dev/null
echo "tocsin: $(rss_mb "$TOCSIN_PID") MB   alertmanager: $(rss_mb "$AM_PID") MB"
echo "== Paging latency: alert POST → webhook received, Tocsin and Alertmanager (bench/paging.sh)"
bench/paging.sh 2000 3
