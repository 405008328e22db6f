#!/usr/bin/env bash
# Issue 25's figures (docs/RESULTS.md, "Past one machine"): builds the release CLI and the release
# wheel of the Python package, unpacks the wheel into WORK/site, and runs scripts/ray-bench.py
# with the Python of scripts/setup-python.sh (Ray installed). Usage:
#   scripts/ray-bench.sh ../shared/data/real-speech/librispeech-251 /tmp/ray-bench
set -euo pipefail
cd "$(dirname "$0")/.."
audio="$1"; work="$2"
scripts/setup-python.sh
py="${CARGO_TARGET_DIR:-target}/py-venv/bin/python"
cargo build --release --locked -p pairalign
if [ -e "$work" ] && [ -n "$(ls -A "$work")" ]; then
    echo "$work is not empty: give a new folder" >&2
    exit 2
fi
mkdir -p "$work/wheels"
"$py" -m maturin build --release --locked --strip --auditwheel skip \
    --manifest-path python/Cargo.toml --interpreter "$py" --out "$work/wheels"
"$py" -m zipfile -e "$work"/wheels/*.whl "$work/site"
PYTHONPATH="$work/site" "$py" scripts/ray-bench.py "$audio" "$work" \
    "${CARGO_TARGET_DIR:-target}/release/pairalign"
