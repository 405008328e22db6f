#!/usr/bin/env python3
"""How much a tokenizer's string of a stretch of audio depends on the window around it.

The index tokenizes a recording in fixed 3 s windows; a query excerpt starts anywhere, so it
straddles two windows: its audio is the tail of one window and the head of the next. This cuts
clean (unmodified) excerpts from one recording at offsets a = 0, 0.5, ..., 2.5 s into a window
and compares, by normalized edit distance (0 = same string, 1 = nothing in common):

- whole: the excerpt tokenized as one clip against the recording's tokens in the same time span
  (what a query tokenized once is matched against);
- phased: the excerpt tokenized in two pieces cut at the window boundary (what phase `a` of the
  window-phase queries gave, a recipe retired in issue 24) against the same span;
- tail / head: each piece against the recording's tokens in its time span.

A frame-synchronous tokenizer scores near 0 everywhere; a tokenizer whose strings describe the
window as a whole scores near 1 off the boundaries (a = 0 is always 0: the same audio, windowed
alike). Uses only the CLI (`pairalign excerpt`, `pairalign tokenize --json`).

    scripts/window-locality.py [--bin target/release/pairalign] [--tokenizer pairalign]
        [--file samples/long/long_espeak-ng_en-us_m3.wav] [--trials 30] [--seed 1]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]


def ned(a, b):
    return edit_distance(a, b) / max(len(a), len(b), 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="target/release/pairalign")
    p.add_argument("--tokenizer", default="pairalign")
    p.add_argument("--file", default="samples/long/long_espeak-ng_en-us_m3.wav")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    tmp = tempfile.mkdtemp()

    def run(*a):
        return subprocess.run([args.bin, *a], capture_output=True, text=True, check=True).stdout

    def tokens(path):
        out = run("tokenize", "--tokenizer", args.tokenizer, "--json", path)
        return json.loads(out.splitlines()[0])

    def cut(start, duration):
        path = os.path.join(tmp, f"{start:.3f}-{duration:.3f}.wav")
        run("excerpt", args.file, "--start", f"{start}", "--duration", f"{duration}", "--out", path)
        return tokens(path)["tokens"]

    full = tokens(args.file)

    def span(start_s, end_s):
        return [t for t, ms in zip(full["tokens"], full["times_ms"])
                if start_s * 1000 <= ms < end_s * 1000]

    windows = int(full["duration_ms"] / 3000)
    if windows < 3:
        sys.exit(f"{args.file} is too short: need at least 9 s")
    rng = random.Random(args.seed)
    rows = {"whole": [], "phased": [], "tail": [], "head": []}
    for _ in range(args.trials):
        k = rng.randrange(0, windows - 1)
        a = rng.choice([0.5, 1.0, 1.5, 2.0, 2.5])
        start, boundary = 3 * k + a, 3 * k + 3
        target = span(start, start + 3)
        tail, head = cut(start, boundary - start), cut(boundary, a)
        rows["whole"].append(ned(cut(start, 3), target))
        rows["phased"].append(ned(tail + head, target))
        rows["tail"].append(ned(tail, span(start, boundary)))
        rows["head"].append(ned(head, span(boundary, start + 3)))
    summary = {
        "tokenizer": args.tokenizer,
        "file": args.file,
        "trials": args.trials,
        **{f"ned_{k}_mean": round(statistics.mean(v), 3) for k, v in rows.items()},
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.tokenizer}: {args.trials} excerpts of {args.file}")
        for k, v in rows.items():
            print(f"  {k:6s} mean NED {statistics.mean(v):.3f}  median {statistics.median(v):.3f}")


if __name__ == "__main__":
    main()
