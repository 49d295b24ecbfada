#!/usr/bin/env bash
# Paging latency, Tocsin and Prometheus Alertmanager in one run: from an alert's POST
# to its webhook arriving at a local receiver. Usage: bench/paging.sh [alerts] [rounds]
# (needs prometheus-alertmanager; bench/run.sh calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
ALERTS="${1:-2000}"
ROUNDS="${2:-3}"
BIN=target/release/tocsin
cargo build --release -q
command -v prometheus-alertmanager >/dev/null || { echo "apt-get install prometheus-alertmanager" >&2; exit 1; }
WORK=$(mktemp -d)
AM_PID=
cleanup() { [ -n "$AM_PID" ] && kill "$AM_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

HOOK_PORT=$(free_port)
AM_PORT=$(free_port)
# Every alert its own group (a new alertname each), sent at once (group_wait 0).
cat > "$WORK/am.yml" <<YAML
route:
  receiver: bench
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 24h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:$HOOK_PORT/hook
        send_resolved: false
YAML
prometheus-alertmanager --config.file="$WORK/am.yml" --storage.path="$WORK/am" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=warn 2>/dev/null &
AM_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(uname -r); tocsin $(git rev-parse --short HEAD); $(prometheus-alertmanager --version 2>&1 | head -1)"
for round in $(seq "$ROUNDS"); do
  echo "== Tocsin (in-process server, fresh embedded SQLite, webhook channel), round $round"
  "$BIN" bench-paging --alerts "$ALERTS"
  echo "== Alertmanager (group_wait 0s, webhook receiver), round $round"
  "$BIN" bench-paging --alerts "$ALERTS" --alertmanager "http://127.0.0.1:$AM_PORT" --receiver-listen "127.0.0.1:$HOOK_PORT"
done
