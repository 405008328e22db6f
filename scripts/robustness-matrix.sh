#!/usr/bin/env bash
# The robustness matrix of docs/RESULTS.md (issue 22): `pairalign eval locate` with the named
# conditions (200 excerpts of 3 s, each modified once per condition, searched in an archive of
# whole recordings that every tokenizer indexes once), for each tokenizer named, on two archives:
#   synth - the held-out voices of `pairalign synth --hours 10 --seed 5` (scripts/train-vq.sh's
#           synthesis), utterances of a voice joined into recordings of 60 s;
#   real  - the held-out half of ../shared/data/real-speech/librispeech-251 (every second file in
#           name order: 126 speakers, one utterance each; pairalign-v2 trained on the other half),
#           joined in name order into 24 recordings of 60-70 s (ffmpeg), so that excerpts are
#           found inside long files of several speakers.
# Writes WORK/matrix.jsonl: one JSON line per archive, tokenizer and condition ("archive" and
# "condition" say which). Codecs (MP3, Opus) and the fingerprinting peers: scripts/peers.sh.
#
#   scripts/robustness-matrix.sh WORK TOKENIZER...   (e.g. out/matrix vq vq-v2 pairalign pairalign-v2)
#
# CONDITIONS overrides the list (names of `pairalign eval locate --help`, or `all`); WORK/synth
# is synthesized when missing; PAIRALIGN_BIN overrides the binary (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: scripts/robustness-matrix.sh WORK TOKENIZER...}
shift
[ $# -gt 0 ] || { echo "name at least one tokenizer" >&2; exit 2; }
if [ -z "${PAIRALIGN_BIN:-}" ]; then
  cargo build --release --quiet --bin pairalign
  PAIRALIGN_BIN=${CARGO_TARGET_DIR:-target}/release/pairalign
fi
bin=$PAIRALIGN_BIN
conditions=${CONDITIONS:-"clean gain-12 gain-6 gain+6 gain+12 white20 white10 babble10 speed0.95 speed1.05 telephone chain"}
mkdir -p "$work"
[ -f "$work/synth/manifest.jsonl" ] || $bin synth --out "$work/synth" --hours 10 --seed 5
real_src=../shared/data/real-speech/librispeech-251
if [ ! -d "$work/real" ] && [ -d "$real_src" ]; then
  mkdir -p "$work/real"
  i=0
  for f in $(ls "$real_src"/*.flac | sort); do
    [ $((i % 2)) -eq 0 ] && ln -s "$(realpath "$f")" "$work/real/"
    i=$((i + 1))
  done
fi
if [ -d "$work/real" ] && [ ! -d "$work/real-long" ]; then
  command -v ffmpeg >/dev/null || { echo "ffmpeg is needed to join the real recordings" >&2; exit 1; }
  mkdir -p "$work/real-long"
  python3 - "$work" <<'PY'
import glob, os, subprocess, sys
work = sys.argv[1]
files = sorted(glob.glob(f"{work}/real/*.flac"))
def seconds(f):
    out = subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                   "-of", "csv=p=0", f])
    return float(out)
group, total, n = [], 0.0, 0
for f in files:
    group.append(f)
    total += seconds(f)
    if total >= 60 or f == files[-1]:
        listing = f"{work}/real-long/.list{n}"
        with open(listing, "w") as out:
            out.writelines(f"file '{os.path.realpath(g)}'\n" for g in group)
        subprocess.check_call(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                               listing, "-ar", "16000", "-ac", "1",
                               f"{work}/real-long/long{n:02d}.wav"])
        os.remove(listing)
        n += 1
        group, total = [], 0.0
PY
fi
tokenizers=()
for t in "$@"; do tokenizers+=(--tokenizer "$t"); done
out="$work/matrix.jsonl"
: > "$out"
for archive in real synth; do
  case $archive in
    synth) corpus=(--corpus "$work/synth/manifest.jsonl" --split heldout --join 60) ;;
    real) [ -d "$work/real-long" ] || { echo "no $real_src: real archive skipped" >&2; continue; }
          corpus=(--corpus "$work/real-long" --layout folder) ;;
  esac
  echo "$archive: $conditions" >&2
  # shellcheck disable=SC2086
  $bin eval locate "${corpus[@]}" "${tokenizers[@]}" --queries 200 --seed 3 \
    --condition $conditions --json |
    python3 -c 'import json,sys
for line in sys.stdin:
    r=json.loads(line); r["archive"]=sys.argv[1]; print(json.dumps(r))' "$archive" >> "$out"
done
echo "wrote $out" >&2
