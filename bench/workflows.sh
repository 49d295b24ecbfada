#!/usr/bin/env bash
# Alert ingestion with no workflow, then with workflows listening to alerts and
# incidents: what queuing trigger events in the ingest transaction costs.
# Usage: bench/workflows.sh [seconds-per-scenario] [tocsin binary]
# The workflows' conditions never hold, so the figures are the queue and the
# dispatcher, not the runs' own work. A binary without workflows (an older
# build, for comparison) runs the first half only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-8}"
BIN="${2:-target/release/tocsin}"
[ -x "$BIN" ] || cargo build --release -q

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/tocsin" --log-level warn --ingest-rate-per-key 0 2> "$WORK/tocsin.err" &
PIDS+=("$!")
for _ in $(seq 100); do grep -q "listening" "$WORK/tocsin.err" && break; sleep 0.1; done
TOKEN=$(grep -o 'TOCSIN_TOKEN=.*' "$WORK/tocsin.err" | cut -d= -f2)
URL="http://127.0.0.1:$PORT"
api() { curl -sf -X POST "$URL$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2"; }
svc=0
key() { svc=$((svc + 1)); api "/api/v1/services" "{\"name\": \"$1\"}" >/dev/null
        api "/api/v1/services/$svc/integration-keys" '{"name": "bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }
run() { echo "== $1"; shift; "$BIN" bench --seconds "$SECONDS_EACH" "$@"; }
round() {
  run "$1: single events (PagerDuty), 1000 alert identities" --scenario pagerduty --url "$URL" --key "$(key "single-$1")" --connections 64
  run "$1: 100 alerts per request (Alertmanager webhook)" --scenario alertmanager-webhook --url "$URL" --key "$(key "batch-$1")" --batch 100 --connections 16
  run "$1: every event a new alert and incident" --scenario pagerduty --url "$URL" --key "$(key "new-$1")" --keys 100000000 --connections 64
}
echo "machine: $(nproc) cores, $(uname -r); $("$BIN" --version)"
round "no workflow"
ids=()
for yaml in \
  'name: Alerts\ntrigger: {alert_fired: {}}\nconditions: alert.labels.never == "x"\nsteps: [{add_note: {text: x}}]\n' \
  'name: Incidents\ntrigger: incident_declared\nconditions: incident.title == "never"\nsteps: [{add_note: {text: x}}]\n'; do
  id=$(printf "$yaml" | curl -sf -X POST "$URL/api/v1/workflows" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/yaml' --data-binary @- | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') \
    || { echo "(no workflows in this build)"; exit 0; }
  ids+=("$id")
done
round "workflows on alert_fired and incident_declared"
# The dispatcher keeps up when the queue is empty soon after the load stops.
for i in $(seq 600); do
  q=$(curl -sf "$URL/metrics" | awk '/^tocsin_workflow_triggers_queued/ {print $2}')
  [ "$q" = "0" ] && { echo "trigger queue drained $((i / 10)).$((i % 10)) s after the last round"; break; }
  sleep 0.1
done
[ "$q" = "0" ] || echo "trigger queue not drained after 60 s: $q events left"
for id in "${ids[@]}"; do
  curl -sf -X DELETE "$URL/api/v1/workflows/$id" -H "Authorization: Bearer $TOKEN" >/dev/null
done
round "no workflow again"
