#!/usr/bin/env bash
# Issue 23's unbounded top 10 on a real-token archive, side by side with rapidfuzz: our exact 10
# nearest documents (`k: None`; by global distance, what the peer computes, and by infix
# distance, which the peer has no equivalent for) against rapidfuzz's `process.cdist` (every
# global distance, all cores) on the same documents and queries (phase 0 of the scale bench's
# queries).
#
#   scripts/scale-nearest-peer.sh DB QUERIES.json [REPEATS]
#
# DB: an archive of scripts/scale-bench.sh (e.g. WORK/500h); QUERIES.json: WORK/queries.json.
# Needs rapidfuzz and numpy (scripts/setup-bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
db=$1
queries=$2
repeats=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nice cargo build --release --locked -q -p pairalign-engine --example recall_probe
ours=$(PROBE_NEAREST="$work" target/release/examples/recall_probe "$db" "$queries" | tail -1)
peer=$(python3 scripts/peer_rapidfuzz_cdist.py "$work/docs.u16" "$work/lengths.u32" \
    "$work/queries.json" 0 "$repeats")
echo "ours: $ours"
echo "peer: $peer"
python3 - "$ours" "$peer" <<'PY'
import json, sys
ours, peer = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = peer["ms_per_query_unbounded"] / ours["ours_ms_per_query_p50"]
infix = peer["ms_per_query_unbounded"] / ours["ours_infix_ms_per_query_p50"]
print(f"unbounded top 10, {peer['docs']} documents, {peer['queries']} queries: "
      f"rapidfuzz cdist {peer['ms_per_query_unbounded']:.1f} ms/query (global distances); ours "
      f"{ours['ours_ms_per_query_p50']:.1f} ms/query global (peer/ours = {ratio:.2f}x), "
      f"{ours['ours_infix_ms_per_query_p50']:.1f} ms/query infix (peer/ours = {infix:.2f}x)")
PY
