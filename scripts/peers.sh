#!/usr/bin/env bash
# Builds the two peer systems of the robustness matrix from ../shared/peers (see the README there)
# into a scratch folder outside the tracked tree, and optionally runs scripts/peers_eval.py with them:
#
#   scripts/peers.sh [--dir DIR] [--peers SRC] [-- PEERS_EVAL_ARGS...]
#
#   --dir DIR    where the builds go (default: out/peers under the repository root; /out/ is
#                gitignored). Nothing is written into the repository's tracked files, and no peer
#                code is ever copied into it.
#   --peers SRC  the peers' sources (default: ../shared/peers beside the repository)
#   -- ARGS      after building, run `DIR/venv/bin/python scripts/peers_eval.py --peers-dir DIR ARGS`
#                (see `scripts/peers_eval.py --help`)
#
# What it builds:
#   - ffmpeg from apt when it is missing (as root, or with sudo; Debian bookworm or later);
#   - DIR/venv: a Python virtual environment with numpy scipy docopt joblib psutil (audfprint's requirements.txt) and
#     ziglang==0.15.2 (Olaf's compiler), from PyPI;
#   - DIR/audfprint: a copy of audfprint's sources, run as `DIR/bin/audfprint` (the venv's python);
#   - DIR/olaf: a copy of Olaf's sources built with `make` (zig build -Doptimize=ReleaseFast),
#     DIR/bin/olaf the binary, DIR/bin/zig the venv's zig;
#   - DIR/olaf_config.json: the Olaf settings for speech the peers README suggests
#     (filter_size_frequency 51, filter_size_time 12); peers_eval.py copies it into a scratch
#     HOME per run with that run's db_folder. DIR/olaf-home/.olaf/ holds the same config for
#     hand use: `HOME=DIR/olaf-home DIR/bin/olaf store FILES`.
# Idempotent: what is built and up to date is left alone. Quiet unless something fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$repo/out/peers"
peers="$(dirname "$repo")/shared/peers"
eval_args=()
run_eval=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=$2; shift 2 ;;
        --peers) peers=$2; shift 2 ;;
        --) shift; run_eval=1; eval_args=("$@"); break ;;
        *) echo "usage: scripts/peers.sh [--dir DIR] [--peers SRC] [-- PEERS_EVAL_ARGS...]" >&2; exit 2 ;;
    esac
done

for sub in audfprint olaf; do
    [ -d "$peers/$sub" ] || { echo "peers.sh: $peers/$sub not found (use --peers)" >&2; exit 1; }
done
mkdir -p "$dir/bin"
dir=$(cd "$dir" && pwd)
case "$dir/" in
    "$repo/out/"*) ;;
    "$repo/"*) echo "peers.sh: $dir is inside the repository but not under out/ (gitignored); choose another --dir" >&2; exit 1 ;;
esac

log="$dir/build.log"
: >"$log"
# Runs a command with its output in the log; on failure shows the log's end and stops.
quiet() {
    if ! "$@" >>"$log" 2>&1; then
        echo "peers.sh: failed: $*" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ffmpeg: audfprint and Olaf decode through it, and peers_eval.py encodes MP3/Opus with it.
if ! command -v ffmpeg >/dev/null 2>&1; then
    quiet as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
    quiet as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes \
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ffmpeg
fi

# The virtual environment.
venv="$dir/venv"
if ! "$venv/bin/python" -c 'import numpy, scipy, docopt, joblib, psutil, ziglang' >/dev/null 2>&1; then
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv --help >/dev/null 2>&1 || {
            echo "peers.sh: python3 -m venv is missing (apt-get install python3-venv)" >&2
            exit 1
        }
        quiet python3 -m venv "$venv"
    fi
    quiet "$venv/bin/pip" install --quiet --disable-pip-version-check \
        numpy scipy docopt joblib psutil 'ziglang==0.15.2'
fi
zig=$("$venv/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
[ -x "$zig" ] || { echo "peers.sh: the ziglang package has no zig at $zig" >&2; exit 1; }
ln -sfn "$zig" "$dir/bin/zig"

# Copies SRC to DST when DST is missing or any file in SRC is newer than STAMP; returns 0 when
# it (re)copied.
refresh_copy() {
    local src=$1 dst=$2 stamp=$3
    if [ -d "$dst" ] && [ -e "$stamp" ] &&
        [ -z "$(find "$src" -newer "$stamp" -not -path '*/.zig-cache*' -not -path '*/zig-out*' -print -quit)" ]; then
        return 1
    fi
    rm -rf "$dst"
    mkdir -p "$dst"
    (cd "$src" && tar --exclude=.zig-cache --exclude=zig-out --exclude=__pycache__ --exclude=.git -cf - .) |
        (cd "$dst" && tar -xf -)
    return 0
}

# audfprint: a copy (its __pycache__ stays out of the shared sources), run by the venv's python.
if refresh_copy "$peers/audfprint" "$dir/audfprint" "$dir/audfprint/.copied"; then
    touch "$dir/audfprint/.copied"
fi
cat >"$dir/bin/audfprint.tmp" <<EOF
#!/bin/sh
exec "$venv/bin/python" "$dir/audfprint/audfprint.py" "\$@"
EOF
chmod +x "$dir/bin/audfprint.tmp"
mv "$dir/bin/audfprint.tmp" "$dir/bin/audfprint"

# Olaf: `make` in a copy, zig on PATH, zig's caches inside DIR.
if refresh_copy "$peers/olaf" "$dir/olaf" "$dir/olaf/zig-out/bin/olaf" ||
    [ ! -x "$dir/olaf/zig-out/bin/olaf" ]; then
    quiet env PATH="$dir/bin:$PATH" ZIG_GLOBAL_CACHE_DIR="$dir/zig-cache" \
        ZIG_LOCAL_CACHE_DIR="$dir/olaf/.zig-cache" make -C "$dir/olaf"
    [ -x "$dir/olaf/zig-out/bin/olaf" ] || { echo "peers.sh: make gave no zig-out/bin/olaf" >&2; exit 1; }
    touch "$dir/olaf/zig-out/bin/olaf"
fi
ln -sfn "$dir/olaf/zig-out/bin/olaf" "$dir/bin/olaf"

# Olaf's settings for speech (the peers README); db and cache under DIR for hand use.
write_olaf_config() {
    local out=$1 db=$2 cache=$3
    cat >"$out.tmp" <<EOF
{
  "db_folder": "$db",
  "cache_folder": "$cache",
  "filter_size_frequency": 51,
  "filter_size_time": 12
}
EOF
    mv "$out.tmp" "$out"
}
write_olaf_config "$dir/olaf_config.json" "$dir/olaf-home/.olaf/db/" "$dir/olaf-home/.olaf/cache/"
mkdir -p "$dir/olaf-home/.olaf"
cp "$dir/olaf_config.json" "$dir/olaf-home/.olaf/olaf_config.json"

if [ "$run_eval" -eq 1 ]; then
    exec "$venv/bin/python" "$repo/scripts/peers_eval.py" --peers-dir "$dir" "${eval_args[@]}"
fi
