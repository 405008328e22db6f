#!/usr/bin/env bash
# Regenerates samples/: short utterances and long multi-sentence files rendered by the project's
# synthetic speech generator (espeak-ng and flite voices), stored as WAV, FLAC, MP3 and Ogg
# Vorbis, with samples/manifest.jsonl giving each file's text (and, for long files, where each
# sentence starts and ends). Needs sox with its MP3 support, installed here with apt; the tests
# only read the committed files and need none of it.
#   scripts/make_samples.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
missing=()
for pkg in sox libsox-fmt-base libsox-fmt-mp3; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rm -rf samples/short samples/long
mkdir -p samples/short samples/long
cargo run -q -p pairalign-datasets --example make_samples -- "$stage" samples/manifest.jsonl \
    > "$stage/files.tsv"

while IFS=$'\t' read -r wav dest; do
    case "$dest" in
        *.wav) cp "$wav" "samples/$dest" ;;
        *.flac) sox "$wav" -C 8 "samples/$dest" ;;
        *.mp3) sox "$wav" -C 48 "samples/$dest" ;;      # 48 kbit/s CBR (LAME)
        *.ogg) sox "$wav" -C 3 "samples/$dest" ;;       # Vorbis quality 3
        *) echo "unexpected destination $dest" >&2; exit 1 ;;
    esac
done < "$stage/files.tsv"

du -ch samples/short samples/long | tail -1
