#!/usr/bin/env bash
# Analytics latency over a million incidents on embedded SQLite: `tocsin bench-analytics`
# writes INCIDENTS synthetic incidents over DAYS days into a fresh SQLite file (multi-row
# inserts), rolls them up by day, serves the file in-process and times REQUESTS sequential
# GETs of each analytics endpoint (whole range as the window).
# Usage: bench/analytics.sh [incidents] [requests] [days]
set -euo pipefail
cd "$(dirname "$0")/.."
INCIDENTS="${1:-1000000}"
REQUESTS="${2:-50}"
DAYS="${3:-730}"
BIN=target/release/tocsin
# One release build, then only the run (the machine is shared).
cargo build --release -q -p tocsin
echo "machine: $(nproc) cores, $(uname -r); tocsin $(git rev-parse --short HEAD); $INCIDENTS incidents over $DAYS days, $REQUESTS GETs per endpoint"
"$BIN" bench-analytics --incidents "$INCIDENTS" --requests "$REQUESTS" --days "$DAYS"
