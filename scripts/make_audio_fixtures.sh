#!/usr/bin/env bash
# Regenerates the small encoded-audio fixtures in datasets/tests/fixtures/ with ffmpeg
# (apt-get install -y ffmpeg). Each is 0.5 s of a 1 kHz tone at amplitude 0.5; the stereo files
# carry the same tone in both channels (so the downmix keeps it). The tests in
# datasets/tests/frontend.rs decode each one and check its duration and its peak frequency.
set -euo pipefail
cd "$(dirname "$0")/../datasets/tests/fixtures"
tone() { # rate channels
  echo "-f lavfi -i sine=frequency=1000:sample_rate=$1:duration=0.5 -af volume=0.5,aformat=channel_layouts=$([ "$2" = 2 ] && echo stereo || echo mono)"
}
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
ff $(tone 44100 1) -c:a flac -map_metadata -1 tone_1k_44100_mono.flac
ff $(tone 44100 2) -c:a libmp3lame -b:a 64k -map_metadata -1 tone_1k_44100_stereo.mp3
ff $(tone 22050 1) -c:a libvorbis -q:a 2 -map_metadata -1 tone_1k_22050_mono.ogg
ff $(tone 48000 2) -c:a aac -b:a 64k -map_metadata -1 tone_1k_48000_stereo.m4a
ff $(tone 16000 1) -c:a alac -map_metadata -1 tone_1k_16000_mono_alac.m4a
ls -l tone_1k_*
