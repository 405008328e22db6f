#!/usr/bin/env bash
# Property-based HTTP testing of `pairalign serve` against its own OpenAPI document with
# Schemathesis (PyPI, installed into a virtual environment at out/schemathesis-venv): requests
# generated from /openapi.json, positive and negative, checked for server errors (5xx), statuses
# and content types the document does not declare, and responses that do not match its schemas.
# Serves a copy of the bundled samples indexed with the shipped tokenizer, writes open, on a
# loopback port.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]      (default 100 per operation; the long form: 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-100}
venv=out/schemathesis-venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi
cargo build --release --quiet --bin pairalign
bin=${CARGO_TARGET_DIR:-target}/release/pairalign
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
$bin index --db "$work/db" --quiet samples/short
$bin serve --db "$work/db" --addr 127.0.0.1:0 2> "$work/serve.log" &
server=$!
for _ in $(seq 100); do
  grep -q "http://" "$work/serve.log" && break
  sleep 0.1
done
base=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -n 1)
"$venv/bin/st" run "$base/openapi.json" --url "$base" --checks all \
  --max-examples "$examples" --workers 2 --request-timeout 30 \
  --report junit --report-dir out/schemathesis
kill -0 "$server" # still serving after all of it
