#!/usr/bin/env python3
"""Content across voices on real speakers (issue 22, part 3), a first measure until `pairalign
eval content` exists: the Speech Commands words in ../shared/data/real-speech/speech-commands-20
(20 words x 10 clips of 1 s, 40 speakers). Every clip is tokenized with `pairalign tokenize
--json` (window by window, as the index does); each clip then queries every clip of the OTHER
speakers (all words) by normalized edit distance (Levenshtein over the longer length), and a
candidate is relevant when it says the same word. P@1 (the nearest says the same word), MRR (of
the first that does), P@10 (share of the 10 nearest that do). Chance P@1 is about 1/20.

    scripts/content-speech-commands.py [--bin target/release/pairalign] TOKENIZER...

Prints one JSON line per tokenizer.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "..", "shared", "data", "real-speech", "speech-commands-20")


def ned(a, b):
    """Levenshtein distance of a and b over the longer length."""
    if not a and not b:
        return 0.0
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[len(b)] / max(len(a), len(b))


def clips():
    """(path, word, speaker) of every clip, in a fixed order."""
    out = []
    for word in sorted(os.listdir(DATA)):
        folder = os.path.join(DATA, word)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".wav"):
                out.append((os.path.join(folder, name), word, name.split("_")[0]))
    return out


def tokens(binary, tokenizer, paths):
    """The token string of each path, in order."""
    out = subprocess.run(
        [binary, "tokenize", "--tokenizer", tokenizer, "--json", *paths],
        check=True, capture_output=True, text=True,
    ).stdout
    by_file = {}
    for line in out.splitlines():
        record = json.loads(line)
        by_file[record["file"]] = record["tokens"]
    return [by_file[p] for p in paths]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get(
        "PAIRALIGN_BIN", os.path.join(ROOT, "target", "release", "pairalign")))
    parser.add_argument("tokenizers", nargs="+")
    args = parser.parse_args()
    if not os.path.isdir(DATA):
        sys.exit(f"no {DATA}: nothing to measure")
    items = clips()
    paths = [p for p, _, _ in items]
    for tokenizer in args.tokenizers:
        strings = tokens(args.bin, tokenizer, paths)
        p1 = rr = p10 = 0.0
        for q, (_, word, speaker) in enumerate(items):
            ranked = sorted(
                (ned(strings[q], strings[c]), c)
                for c, (_, _, other) in enumerate(items) if other != speaker
            )
            same = [items[c][1] == word for _, c in ranked]
            p1 += same[0]
            rr += 1.0 / (same.index(True) + 1) if True in same else 0.0
            p10 += sum(same[:10]) / 10
        n = len(items)
        print(json.dumps({
            "tokenizer": tokenizer, "clips": n, "words": len({w for _, w, _ in items}),
            "speakers": len({s for _, _, s in items}),
            "p_at_1": round(p1 / n, 4), "mrr": round(rr / n, 4), "p_at_10": round(p10 / n, 4),
            "tokens_per_clip": round(sum(map(len, strings)) / n, 2),
        }))


if __name__ == "__main__":
    main()
