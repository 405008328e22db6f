#!/usr/bin/env bash
# Installs what the Python package's tests need (python/tests, run by `cargo test` through
# python/tests/pytest.rs): maturin, pytest, numpy and Ray (Data and Serve, for pairalign.ray
# and its tests) from PyPI, into a virtual environment in
# the target folder, ${CARGO_TARGET_DIR:-target}/py-venv, where the test looks for them. No root
# needed when python3 and its venv module are there (Debian: python3-venv); otherwise the test
# says it skips. Idempotent: an environment that already has them is left alone. Quiet unless
# something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CARGO_TARGET_DIR:-target}/py-venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import maturin, numpy, pytest, ray.data, ray.serve' 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'maturin>=1.9.4,<2' 'pytest>=7' 'numpy>=1.19' 'ray[data,serve]>=2.40,<3'
