#!/usr/bin/env bash
# Issue 9's load test: `pairalign serve` on loopback under 200 concurrent clients for 60 s, 90%
# query-by-example searches and 10% uploads, against a copy of an indexed archive (default: the
# bundled samples; scripts/latency-100h.sh builds the 100-hour one). See benches/benches/load.rs
# for what is measured and checked; settings through its PAIRALIGN_LOAD_* variables.
#
#   scripts/load-test.sh [DB]      e.g. scripts/load-test.sh latency-data/db
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin pairalign
if [ $# -gt 0 ]; then
    export PAIRALIGN_LOAD_DB=$1
fi
cargo bench --locked -q -p pairalign-benches --bench load
