#!/usr/bin/env bash
# Installs what the benchmarks' peers need (not needed by the tests): the rapidfuzz Python
# package for the exhaustive-scan comparison in benches/benches/search.rs.
set -euo pipefail
python3 -m pip install --quiet 'rapidfuzz>=3' numpy
