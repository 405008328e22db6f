#!/usr/bin/env python3
"""Peer for the exhaustive-scan benchmark: the rapidfuzz package's process.cdist (C++ core, all
cores) computing Levenshtein distances from each query to every document.

Called by benches/benches/search.rs with the same data it searches:
    peer_rapidfuzz_cdist.py DOCS.u16 DOC_LEN QUERIES.json K REPEATS
DOCS.u16 is little-endian u16 tokens, DOC_LEN per document (or DOC_LEN is a file of
little-endian u32 document lengths, for documents of different lengths); QUERIES.json a list of
token lists.
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
    k, repeats = int(k), int(repeats)
    tokens = np.fromfile(docs_path, dtype="<u2")
    if doc_len.isdigit():
        rows = tokens.reshape(-1, int(doc_len)).tolist()
    else:
        ends = np.cumsum(np.fromfile(doc_len, dtype="<u4"))
        rows = [row.tolist() for row in np.split(tokens, ends[:-1])]
    choices = ["".join(map(chr, row)) for row in rows]
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
