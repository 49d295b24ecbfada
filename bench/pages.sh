#!/usr/bin/env bash
# Web UI page latency: `tocsin bench-pages` (seeds a fresh SQLite file with 10,000 incidents,
# serves it in-process, times each page) run ROUNDS times; prints each round and, per page,
# the median of the round medians. Usage: bench/pages.sh [incidents] [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
INCIDENTS="${1:-10000}"
REQUESTS="${2:-200}"
ROUNDS="${3:-3}"
BIN=target/release/tocsin
# One release build, then only runs (the machine is shared).
cargo build --release -q -p tocsin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(uname -r); tocsin $(git rev-parse --short HEAD); $INCIDENTS incidents, $REQUESTS GETs per page"
for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  "$BIN" bench-pages --incidents "$INCIDENTS" --requests "$REQUESTS" --json > "$WORK/round-$round.json"
  python3 - "$WORK/round-$round.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"seeded in {r['seed_seconds']:.1f} s; worst median {r['worst_median_ms']:.2f} ms ({r['worst_page']})")
for p in r["pages"]:
    if p["absent"]:
        print(f"  {p['page']:<40} absent")
    else:
        print(f"  {p['page']:<40} median {p['median_ms']:7.2f}  p90 {p['p90_ms']:7.2f}  p99 {p['p99_ms']:7.2f}  max {p['max_ms']:7.2f} ms  {p['bytes']:>7} B")
PY
done

echo "== median of the $ROUNDS round medians"
python3 - "$WORK"/round-*.json <<'PY'
import json, statistics, sys
rounds = [json.load(open(f)) for f in sys.argv[1:]]
worst, ok = 0.0, True
print(f"{'page':<40} {'median':>10}   rounds")
for i, p in enumerate(rounds[0]["pages"]):
    meds = [r["pages"][i].get("median_ms") for r in rounds]
    if any(m is None for m in meds):
        print(f"{p['page']:<40} {'absent':>10}")
        continue
    m = statistics.median(meds)
    worst, ok = max(worst, m), ok and m < 50
    print(f"{p['page']:<40} {m:7.2f} ms   " + " / ".join(f"{x:.2f}" for x in meds))
print(f"worst median {worst:.2f} ms; every median under 50 ms: {'yes' if ok else 'NO'}")
sys.exit(0 if ok else 1)
PY
