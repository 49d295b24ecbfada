#!/usr/bin/env bash
# A public status page served by Tocsin from its in-memory cache, against nginx
# serving the same page as a static file, in one run on this machine's loopback.
# Usage: bench/status.sh [seconds-per-round] [rounds]   (needs nginx and wrk:
# apt-get install nginx-light wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-10}"
ROUNDS="${2:-3}"
CONNECTIONS=64
BIN=target/release/tocsin
cargo build --release -q
command -v nginx >/dev/null || { echo "apt-get install nginx-light" >&2; exit 1; }
command -v wrk >/dev/null || { echo "apt-get install wrk" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

TOCSIN_PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$TOCSIN_PORT" --data-dir "$WORK/tocsin" --log-level warn 2> "$WORK/tocsin.err" &
PIDS+=("$!")
for _ in $(seq 100); do grep -q "listening" "$WORK/tocsin.err" && break; sleep 0.1; done
TOKEN=$(grep -o 'TOCSIN_TOKEN=.*' "$WORK/tocsin.err" | cut -d= -f2)
URL="http://127.0.0.1:$TOCSIN_PORT"
api() { curl -sf -X "$1" "$URL$2" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$3"; }
id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

# A realistic page: two groups, eight components with uptime bars, an active
# incident with three updates, an upcoming maintenance and a resolved incident.
PAGE=$(api POST /api/v1/status-pages '{"slug": "acme", "name": "Acme Cloud", "description": "Live status of Acme services"}' | id)
G1=$(api POST "/api/v1/status-pages/$PAGE/component-groups" '{"name": "Platform"}' | id)
G2=$(api POST "/api/v1/status-pages/$PAGE/component-groups" '{"name": "Regions"}' | id)
C=()
for n in API Dashboard Webhooks Search; do C+=("$(api POST "/api/v1/status-pages/$PAGE/components" "{\"name\": \"$n\", \"group_id\": $G1}" | id)"); done
for n in eu-west us-east ap-south "Status emails"; do C+=("$(api POST "/api/v1/status-pages/$PAGE/components" "{\"name\": \"$n\", \"group_id\": $G2}" | id)"); done
OLD=$(api POST "/api/v1/status-pages/$PAGE/incidents" "{\"name\": \"Delayed webhooks\", \"body\": \"Webhooks are delayed by up to 5 minutes.\", \"components\": [{\"component_id\": ${C[2]}, \"status\": \"degraded_performance\"}]}" | id)
api POST "/api/v1/status-posts/$OLD/updates" '{"status": "resolved", "body": "Webhook delivery is back to normal."}' >/dev/null
INC=$(api POST "/api/v1/status-pages/$PAGE/incidents" "{\"name\": \"Elevated API error rates\", \"body\": \"We are investigating elevated error rates on the API.\", \"components\": [{\"component_id\": ${C[0]}, \"status\": \"partial_outage\"}, {\"component_id\": ${C[4]}, \"status\": \"degraded_performance\"}]}" | id)
api POST "/api/v1/status-posts/$INC/updates" '{"status": "identified", "body": "A faulty load balancer in eu-west has been identified and removed from rotation."}' >/dev/null
api POST "/api/v1/status-posts/$INC/updates" '{"status": "monitoring", "body": "Error rates are back to normal; we are monitoring."}' >/dev/null
FROM=$(date -u -d '+2 days' +%Y-%m-%dT02:00:00Z); UNTIL=$(date -u -d '+2 days' +%Y-%m-%dT04:00:00Z)
api POST "/api/v1/status-pages/$PAGE/maintenances" "{\"name\": \"Database upgrade\", \"body\": \"We will upgrade the primary database.\", \"scheduled_for\": \"$FROM\", \"scheduled_until\": \"$UNTIL\", \"components\": [${C[0]}, ${C[1]}]}" >/dev/null

# The same bytes for nginx: the page as Tocsin serves it.
mkdir -p "$WORK/www"
# nginx's workers run as another user: let them read the page.
chmod 755 "$WORK" "$WORK/www"
curl -sf "$URL/status/acme/" -o "$WORK/www/index.html"
chmod 644 "$WORK/www/index.html"
BYTES=$(stat -c %s "$WORK/www/index.html")
[ "$BYTES" -gt 10000 ] || { echo "the page is only $BYTES bytes: not the page" >&2; exit 1; }
NGINX_PORT=$(free_port)
cat > "$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 1000000;
    types { text/html html; }
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; index index.html; }
}
CONF
nginx -c "$WORK/nginx.conf"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NGINX_PORT/" >/dev/null && break; sleep 0.1; done
cmp -s <(curl -sf "http://127.0.0.1:$NGINX_PORT/") <(curl -sf "$URL/status/acme/") || { echo "nginx and Tocsin serve different bytes" >&2; exit 1; }

rps() { wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$1" | tee -a "$WORK/wrk.log" | awk '/Requests\/sec/ {print $2}'; }
echo "machine: $(nproc) cores, $(uname -r); tocsin $(git rev-parse --short HEAD); $(nginx -v 2>&1); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "page: $BYTES bytes; wrk -t2 -c$CONNECTIONS -d${SECONDS_EACH}s, $ROUNDS rounds alternating"
# Warm both (Tocsin renders the page into its cache on the first request).
wrk -t1 -c4 -d2s "$URL/status/acme/" >/dev/null; wrk -t1 -c4 -d2s "http://127.0.0.1:$NGINX_PORT/" >/dev/null
T=(); N=()
for round in $(seq "$ROUNDS"); do
    t=$(rps "$URL/status/acme/"); n=$(rps "http://127.0.0.1:$NGINX_PORT/")
    T+=("$t"); N+=("$n")
    printf 'round %d: tocsin %10.0f req/s   nginx %10.0f req/s   ratio %.2f\n' "$round" "$t" "$n" "$(python3 -c "print($t/$n)")"
done
python3 - "${T[*]}" "${N[*]}" <<'PY'
import statistics, sys
t = [float(x) for x in sys.argv[1].split()]; n = [float(x) for x in sys.argv[2].split()]
mt, mn = statistics.median(t), statistics.median(n)
ratio = statistics.median(a / b for a, b in zip(t, n))
print(f"median: tocsin {mt:.0f} req/s, nginx {mn:.0f} req/s; median of the rounds' ratios {ratio:.2f} (target >= 0.50)")
PY
