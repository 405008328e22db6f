#!/usr/bin/env python3
"""Issue 25's figures: bulk indexing on Ray Data against `pairalign index`, and sharded search on
Ray Serve against one database, on this machine (a local Ray cluster).

    scripts/ray-bench.sh AUDIO_DIR WORK_DIR      # builds the release wheel, then runs this

1. `pairalign index` (the release CLI) indexes AUDIO_DIR into WORK/single: wall time, realtime.
2. `pairalign.ray.index` indexes it into 2 shards with 1 worker of 1 CPU, 2 workers of 1 CPU and
   1 worker of 2 CPUs: wall time (Ray Data's start included) and the rate between the first and
   the last batch back (steady state).
3. The same archive in 1, 2 and 4 shards served by Ray Serve: p50/p99 of 3 s clips (cut from the
   archive's files at random, tokenized once beforehand) through the application's handle,
   against `Reader.search_query` on the one database in this process; and end to end over HTTP
   (clip bytes in, tokenizing included) for 2 shards.
Prints one JSON object.
"""

import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import ray
from ray import serve

import pairalign
from pairalign import ray as pray


def percentiles(ms):
    ms = sorted(ms)
    return {"p50": round(statistics.median(ms), 3), "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3)}


def main():
    audio, work, cli = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    rounds = int(os.environ.get("RAY_BENCH_QUERIES", "100"))
    work.mkdir(parents=True, exist_ok=True)
    out = {"audio": str(audio), "cpus": os.cpu_count()}

    # 1. One process.
    single = work / "single"
    t = time.monotonic()
    report = json.loads(subprocess.run([cli, "index", "--db", str(single), "--json", str(audio)],
                                       check=True, capture_output=True, text=True).stdout)
    out["pairalign_index"] = {"wall_s": round(time.monotonic() - t, 2), "audio_s": round(report["audio_s"], 1),
                              "realtime": round(report["audio_s"] / (time.monotonic() - t), 1),
                              "files": report["indexed"]}

    # 2. Ray Data.
    t = time.monotonic()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    out["ray_init_s"] = round(time.monotonic() - t, 2)
    runs = []
    for workers, cpus in [(1, 1.0), (2, 1.0), (1, 2.0)]:
        db = work / f"ray-{workers}x{int(cpus)}"
        backs = []
        t = time.monotonic()
        report = pray.index(db, [audio], shards=2, workers=workers, cpus_per_worker=cpus,
                            progress=lambda p: backs.append((time.monotonic(), p["files_done"])))
        wall = time.monotonic() - t
        (t0, f0), (t1, f1) = backs[0], backs[-1]
        runs.append({"workers": workers, "cpus_per_worker": cpus, "wall_s": round(wall, 2),
                     "realtime": round(report["audio_s"] / wall, 1),
                     "steady_realtime": round(report["audio_s"] * (f1 - f0) / max(f1, 1) / max(t1 - t0, 1e-9), 1),
                     "indexed": report["indexed"], "failed": len(report["failed"])})
    out["ray_index"] = runs

    # 3. Ray Serve.
    files = sorted(p for p in audio.rglob("*") if p.suffix.lower() in {".flac", ".wav", ".mp3", ".ogg"})
    rng = random.Random(7)
    tokenizer = pairalign.Tokenizer()
    clips, queries = [], []
    while len(queries) < rounds:
        samples, rate = pairalign.decode(rng.choice(files))
        if len(samples) < 4 * rate:
            continue
        start = rng.randrange(0, len(samples) - 3 * rate)
        clip = samples[start : start + 3 * rate]
        clips.append(clip)
        queries.append(tokenizer.query(clip, rate))
    reader = pairalign.Reader(single)
    for q in queries[:10]:
        reader.search_query(q)
    lat = []
    for q in queries:
        t = time.perf_counter()
        reader.search_query(q)
        lat.append((time.perf_counter() - t) * 1e3)
    out["one_database_in_process_ms"] = percentiles(lat)
    serving = {}
    for shards in [1, 2, 4]:
        db = work / f"shards-{shards}"
        if not (db / "SHARDS.json").exists():
            pray.index(db, [audio], shards=shards, workers=2)
        handle = serve.run(pray.serve_app(db, cpus_per_replica=0.1), name="bench", route_prefix="/")
        for q in queries[:10]:
            handle.search.remote(q).result()
        lat = []
        for q in queries:
            t = time.perf_counter()
            r = handle.search.remote(q).result()
            lat.append((time.perf_counter() - t) * 1e3)
        serving[shards] = percentiles(lat)
        serving[shards]["fan_out_overhead_p50_ms"] = round(serving[shards]["p50"] - out["one_database_in_process_ms"]["p50"], 3)
        if shards == 2:
            import io, wave
            lat = []
            for clip in clips:
                buf = io.BytesIO()
                with wave.open(buf, "wb") as w:
                    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
                    w.writeframes((np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())
                req = urllib.request.Request("http://127.0.0.1:8000/v1/search", data=buf.getvalue(),
                                             headers={"Content-Type": "audio/wav"})
                t = time.perf_counter()
                json.loads(urllib.request.urlopen(req).read())
                lat.append((time.perf_counter() - t) * 1e3)
            serving["http_2_shards_with_tokenizing"] = percentiles(lat)
        serve.delete("bench")
    out["serve_handle_ms"] = serving
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
