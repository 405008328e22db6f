#!/usr/bin/env python3
"""Peer for the exhaustive-scan benchmark: the rapidfuzz package's process.cdist (C++ core, all
cores) computing Levenshtein distances from each query to every document.

Called by benches/benches/search.rs with the same data it searches:
    peer_rapidfuzz_cdist.py DOCS.u16 DOC_LEN QUERIES.json K REPEATS
DOCS.u16 is little-endian u16 tokens, DOC_LEN per document; QUERIES.json a list of token lists.
Tokens become code points (chr), which rapidfuzz compares natively. Prints one JSON line with the
median milliseconds per query, with and without score_cutoff=K.
"""
import json
import sys
import time

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein


def main() -> None:
    docs_path, doc_len, queries_path, k, repeats = sys.argv[1:6]
    doc_len, k, repeats = int(doc_len), int(k), int(repeats)
    tokens = np.fromfile(docs_path, dtype="<u2").reshape(-1, doc_len)
    choices = ["".join(map(chr, row)) for row in tokens.tolist()]
    with open(queries_path) as f:
        queries = ["".join(map(chr, q)) for q in json.load(f)]
    result = {"docs": len(choices), "queries": len(queries)}
    for name, cutoff in (("unbounded", None), ("bounded", k)):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            process.cdist(queries, choices, scorer=Levenshtein.distance, score_cutoff=cutoff,
                          dtype=np.int32, workers=-1)
            times.append((time.perf_counter() - start) * 1e3 / len(queries))
        times.sort()
        result[f"ms_per_query_{name}"] = times[len(times) // 2]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
