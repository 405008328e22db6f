#!/usr/bin/env bash
# Property-based HTTP testing of `pairalign serve` against its own OpenAPI document with
# Schemathesis (PyPI, installed into a virtual environment at out/schemathesis-venv): requests
# generated from /openapi.json, positive and negative, checked for server errors (5xx), statuses
# and content types the document does not declare, and responses that do not match its schemas.
# Serves the bundled samples indexed with the shipped tokenizer on a loopback port, with a
# bearer token (as a shared server runs; every request carries it, and Schemathesis checks that
# requests without it or with another one are refused).
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
token=schemathesis-$RANDOM$RANDOM
printf '%s\n' "$token" > "$work/token"
$bin serve --db "$work/db" --addr 127.0.0.1:0 --token-file "$work/token" 2> "$work/serve.log" &
server=$!
for _ in $(seq 100); do
  grep -q "http://" "$work/serve.log" && break
  sleep 0.1
done
base=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -n 1)
"$venv/bin/st" run "$base/openapi.json" --url "$base" --checks all \
  --max-examples "$examples" --workers 2 --request-timeout 30 \
  --header "Authorization: Bearer $token" --suppress-health-check filter_too_much \
  --report junit --report-dir out/schemathesis
kill -0 "$server" # still serving after all of it
