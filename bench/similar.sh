#!/usr/bin/env bash
# Similar-incident search latency: `tocsin bench-similar` seeds a fresh SQLite file with
# INCIDENTS incidents once (kept in a temporary directory for the rounds), then each round
# starts a server on it, builds the index and times REQUESTS searches of each kind.
# Prints each round and the median of the round medians. Target: median under 100 ms.
# Usage: bench/similar.sh [incidents] [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
INCIDENTS="${1:-100000}"
REQUESTS="${2:-300}"
ROUNDS="${3:-3}"
BIN=target/release/tocsin
cargo build --release -q -p tocsin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(uname -r); tocsin $(git rev-parse --short HEAD); $INCIDENTS incidents, $REQUESTS searches of each kind"
for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  "$BIN" bench-similar --incidents "$INCIDENTS" --requests "$REQUESTS" --keep "$WORK/similar.db" --json > "$WORK/round-$round.json"
  python3 - "$WORK/round-$round.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r["seed_seconds"] is not None:
    print(f"seeded in {r['seed_seconds']:.0f} s")
print(f"index of {r['incidents']} incidents built in {r['build_ms']} ms; {r['mean_results']:.1f} results per search")
for k in ("by_incident", "by_text"):
    t = r[k]
    print(f"  {k:<12} median {t['median_ms']:6.2f}  p90 {t['p90_ms']:6.2f}  p99 {t['p99_ms']:6.2f}  max {t['max_ms']:6.2f} ms")
PY
done

echo "== median of the $ROUNDS round medians"
python3 - "$WORK"/round-*.json <<'PY'
import json, statistics, sys
rounds = [json.load(open(f)) for f in sys.argv[1:]]
ok = True
for k in ("by_incident", "by_text"):
    meds = [r[k]["median_ms"] for r in rounds]
    m = statistics.median(meds)
    ok = ok and m < 100
    print(f"{k:<12} {m:7.2f} ms   " + " / ".join(f"{x:.2f}" for x in meds))
builds = [r["build_ms"] for r in rounds]
print(f"index build {statistics.median(builds):.0f} ms (median)")
print(f"every median under 100 ms: {'yes' if ok else 'NO'}")
sys.exit(0 if ok else 1)
PY
