#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of every reader of untrusted bytes: segment
# files, the MANIFEST, the token JSONL importer and the audio front end (fuzz/fuzz_targets/). On
# the stable toolchain with `--sanitizer none` (Rust's own checks: bounds, overflow in the
# release-with-debug-assertions build cargo-fuzz makes). Installs cargo-fuzz when missing, seeds
# each corpus from the repository's fixtures and samples, and runs each target for SECONDS.
# A crash leaves its input in fuzz/artifacts/<target>/: copy it into fuzz/regressions/<target>/,
# where `cargo test` replays it (engine/tests/fuzz_replay.rs, datasets/tests/fuzz_replay.rs).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    (default: 600 s each, every target; the long form)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(segment manifest import audio)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet

seed() { # seed TARGET NAME < bytes
  mkdir -p "fuzz/corpus/$1"
  cat > "fuzz/corpus/$1/$2"
}
if [ ! -d fuzz/corpus ]; then
  for f in tests/fixtures/segment-v1.seg tests/fixtures/db-v1/segments/*.seg; do
    seed segment "$(basename "$f")" < "$f"
  done
  seed manifest MANIFEST < tests/fixtures/db-v1/MANIFEST
  printf '{"id": "a", "tokens": [1, 2, 3, 4, 5, 6]}\n{"id": "b", "tokens": [7, 8, 9], "times_ms": [0, 80, 160], "duration_ms": 240}\n' |
    seed import two-docs.jsonl
  # The audio target reads its first byte as the extension: 0 wav, 1 flac, 2 mp3, 3 ogg.
  i=0
  for f in samples/short/*; do
    case "$f" in
      *.wav) ext=0 ;; *.flac) ext=1 ;; *.mp3) ext=2 ;; *.ogg) ext=3 ;; *) continue ;;
    esac
    { printf "\\x0$ext"; head -c 8192 "$f"; } | seed audio "sample-$i"
    i=$((i + 1))
  done
fi
# Scratch files on a tmpfs when there is one.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
for t in "${targets[@]}"; do
  mkdir -p fuzz/logs
  echo "== $t: ${secs} s"
  (cd fuzz && cargo fuzz run --sanitizer none "$t" -- -max_total_time="$secs" \
      -rss_limit_mb=4096 -timeout=30 -max_len=65536 -print_final_stats=1) \
    > "fuzz/logs/$t.log" 2>&1 || { tail -n 40 "fuzz/logs/$t.log"; exit 1; }
  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "fuzz/logs/$t.log" || true
done
