#!/usr/bin/env python3
"""The robustness matrix with the peers in the same run: pairalign (one row per tokenizer),
audfprint and Olaf on the same archive and the same modified 3 s query excerpts.

Usually run through scripts/peers.sh, which builds the peers first and passes --peers-dir:

    nice -n 15 scripts/peers.sh -- --archive DIR --queries 200 --seed 1 \\
        --conditions clean,white20,speed1.05,mp3-64,chain --tokenizer vq-v2 --tokenizer pairalign

or on its own (stdlib only; audfprint runs in the peers' venv):

    PAIRALIGN_BIN=target/release/pairalign scripts/peers_eval.py --peers-dir out/peers \\
        --archive DIR --queries 20 --conditions clean,speed1.05

What it does:
  (a) draws --queries excerpts of 3 s (seeded) from the archive's recordings of at least 6 s
      (recordings in shuffled order, cycled; the start uniform in [0, duration - 3]), and for
      every condition writes the query WAVs (16 kHz mono) with `pairalign excerpt --view SPEC`;
      mp3-32/mp3-64/opus-32 encode the clean excerpt with ffmpeg (libmp3lame, libopus; CBR at
      16 kHz mono) and decode it back to 16 kHz WAV with ffmpeg, so every system reads the same
      samples;
  (b) indexes the archive once per system (reused while the archive's file list, sizes and
      times are unchanged): `pairalign index --db DB --tokenizer T ARCHIVE --quiet` per
      tokenizer, `audfprint new --dbase DB.pklz --list FILES` (its defaults: density 20,
      11025 Hz), `olaf store FILES` (config: ../shared/peers' speech settings, in a scratch HOME);
  (c) runs every query through every system: source first (the top hit is the query's
      recording), located (source first and the hit's start within 300 ms of the excerpt's true
      start), start error (of the queries whose source is first), query time;
  (d) prints one JSON line per (system, condition) and markdown tables, and writes them to
      WORK/results.jsonl and WORK/table.md (per-query records: WORK/queries.jsonl).

Query time, per system (query_ms; query_ms_internal where the system reports one):
  - pairalign: wall time of one `pairalign search --db DB CLIP --json` process per query (process
    start, model and database open, decoding, tokenizing, search); internal: its `took_ms`.
  - audfprint: one matcher process loads the hash table once (not counted) and matches every
    query in turn (audfprint's own Matcher.match_file, with `audfprint match -x 5` settings);
    query_ms is the wall time of each match_file call (ffmpeg decoding, landmarks, matching).
  - Olaf: wall time of one `olaf query --threads 1 CLIP` process per query (its LMDB index is
    memory-mapped, so there is no table to load; it decodes through an ffmpeg process);
    internal: the matching time Olaf prints ("Matched ... in X s").
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

EXCERPT_S = 3.0
MIN_RECORDING_S = 6.0
LOCATED_MS = 300.0
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")

# Named conditions: a `pairalign excerpt --view` spec, or a codec applied to the clean excerpt.
VIEW_CONDITIONS = {
    "clean": None,
    "gain-6": "gain=-6:-6",
    "gain+6": "gain=6:6",
    "gain-12": "gain=-12:-12",
    "gain+12": "gain=12:12",
    "white20": "noise=20:20,noise-kinds=white",
    "white10": "noise=10:10,noise-kinds=white",
    "white5": "noise=5:5,noise-kinds=white",
    "babble10": "noise=10:10,noise-kinds=babble",
    "speed0.95": "speed=0.95:0.95",
    "speed1.05": "speed=1.05:1.05",
    "pitch-2": "pitch=-2:-2",
    "pitch+2": "pitch=2:2",
    # Band-pass 300-3400 Hz, then down to 8 kHz and back.
    "telephone": "telephone,8k,p=1",
    # A synthetic room, RT60 0.3 s, 30% wet.
    "reverb": "reverb=0.3:0.3,wet=0.3:0.3",
    # Applied in the view library's order: speed, noise, gain (the SNR is that of the noise
    # against the signal before the gain).
    "chain": "noise=20:20,noise-kinds=white,speed=1.05:1.05,gain=-6:-6,p=1",
}
CODEC_CONDITIONS = {
    "mp3-32": ("libmp3lame", "32k", ".mp3"),
    "mp3-64": ("libmp3lame", "64k", ".mp3"),
    "opus-32": ("libopus", "32k", ".opus"),
}
ALL_CONDITIONS = list(VIEW_CONDITIONS) + list(CODEC_CONDITIONS)


def die(msg):
    print(f"peers_eval: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, env=None, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if check and p.returncode != 0:
        die(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p


def canon(path):
    """A path's identity for comparing hits with sources: the resolved path."""
    return os.path.realpath(path) if path else ""


def same_file(hit, source):
    if not hit:
        return False
    if canon(hit) == canon(source):
        return True
    return os.path.basename(hit) == os.path.basename(canon(source)) or \
        os.path.basename(hit) == os.path.basename(source)


def percentile(values, q):
    """Nearest-rank percentile (q in 0-100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def list_archive(archive):
    files = []
    for root, dirs, names in os.walk(archive, followlinks=True):
        dirs.sort()
        for n in names:
            if n.lower().endswith(AUDIO_EXTENSIONS):
                files.append(os.path.join(root, n))
    return sorted(files)


def archive_key(files):
    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        h.update(f"{f}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def durations(files, cache_path):
    cache = {}
    if os.path.exists(cache_path):
        with open(cache_path) as fh:
            cache = json.load(fh)
    out = {}
    for f in files:
        st = os.stat(f)
        key = f"{canon(f)}|{st.st_size}|{int(st.st_mtime)}"
        if key not in cache:
            p = run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                     "-of", "csv=p=0", f], check=False)
            try:
                cache[key] = float(p.stdout.strip())
            except ValueError:
                cache[key] = 0.0
        out[f] = cache[key]
    with open(cache_path, "w") as fh:
        json.dump(cache, fh)
    return out


def draw_excerpts(files, durs, n, seed):
    eligible = [f for f in files if durs[f] >= MIN_RECORDING_S]
    if not eligible:
        die(f"no recording of at least {MIN_RECORDING_S} s in the archive")
    rng = random.Random(seed)
    order = eligible[:]
    rng.shuffle(order)
    out = []
    for i in range(n):
        f = order[i % len(order)]
        if i and i % len(order) == 0:
            rng.shuffle(order)
            f = order[0]
        start = round(rng.uniform(0.0, durs[f] - EXCERPT_S), 3)
        out.append({"i": i, "file": f, "start_s": start})
    return out


def ffmpeg_encoders():
    p = run(["ffmpeg", "-hide_banner", "-encoders"], check=False)
    return p.stdout


def make_queries(args, excerpts, conditions, qdir):
    """Writes WORK/queries/COND/NNNN.wav for every excerpt and condition (kept when present for
    the same draw)."""
    clean_dir = os.path.join(qdir, "clean")
    paths = {}
    for cond in ["clean"] + [c for c in conditions if c != "clean"]:
        d = os.path.join(qdir, cond)
        os.makedirs(d, exist_ok=True)
        paths[cond] = []
        for ex in excerpts:
            out = os.path.join(d, f"{ex['i']:04d}.wav")
            paths[cond].append(out)
            if os.path.exists(out):
                continue
            tmp = out + ".tmp.wav"
            if cond in CODEC_CONDITIONS:
                codec, rate, ext = CODEC_CONDITIONS[cond]
                enc = os.path.join(d, f"{ex['i']:04d}{ext}")
                src = os.path.join(clean_dir, f"{ex['i']:04d}.wav")
                run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", src, "-c:a", codec,
                     "-b:a", rate] + (["-vbr", "off"] if codec == "libopus" else []) + [enc])
                run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", enc, "-ac", "1",
                     "-ar", "16000", "-c:a", "pcm_s16le", tmp])
            else:
                cmd = [args.pairalign, "excerpt", ex["file"], "--start", f"{ex['start_s']:.3f}",
                       "--duration", f"{EXCERPT_S}", "--seed", str(args.seed * 100003 + ex["i"]),
                       "--out", tmp]
                if VIEW_CONDITIONS[cond]:
                    cmd += ["--view", VIEW_CONDITIONS[cond]]
                run(cmd)
            os.replace(tmp, out)
    return paths


# ---------------------------------------------------------------- systems


class Pairalign:
    def __init__(self, args, tokenizer, work):
        self.args = args
        self.tokenizer = tokenizer
        self.name = f"pairalign {tokenizer}"
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", tokenizer)
        self.db = os.path.join(work, "db", f"pairalign-{safe}")
        self.weights = None  # "tokenizer T (weights H)", as `pairalign search` reports it

    def index(self, archive, files):
        shutil.rmtree(self.db, ignore_errors=True)
        run([self.args.pairalign, "index", "--db", self.db, "--tokenizer", self.tokenizer,
             archive, "--quiet"])

    def query_all(self, queries):
        out = []
        for q in queries:
            t0 = time.perf_counter()
            p = run([self.args.pairalign, "search", "--db", self.db, "--tokenizer",
                     self.tokenizer, q, "--json", "--top", "10"], check=False)
            wall = (time.perf_counter() - t0) * 1000.0
            rec = {"hit": None, "start_s": None, "ms": wall, "internal_ms": None}
            if p.returncode != 0:
                rec["error"] = p.stderr.strip()[-300:]
            else:
                line = next((ln for ln in p.stdout.splitlines() if ln.startswith("{")), "{}")
                res = json.loads(line)
                hits = res.get("hits") or []
                if hits:
                    rec["hit"] = hits[0]["id"]
                    rec["start_s"] = hits[0]["start_ms"] / 1000.0
                rec["internal_ms"] = res.get("took_ms")
                m = re.search(r"^tokenizer .*$", p.stdout + "\n" + p.stderr, re.M)
                if m and not self.weights:
                    self.weights = m.group(0).strip()
            out.append(rec)
        return out


class Audfprint:
    name = "audfprint"

    def __init__(self, args, work):
        self.args = args
        self.db = os.path.join(work, "db", "audfprint.pklz")
        self.work = work

    def index(self, archive, files):
        lst = os.path.join(self.work, "db", "audfprint-files.txt")
        with open(lst, "w") as fh:
            fh.write("".join(f + "\n" for f in files))
        if os.path.exists(self.db):
            os.remove(self.db)
        run([self.args.peers_python, os.path.join(self.args.peers_dir, "audfprint", "audfprint.py"),
             "new", "--dbase", self.db, "--list", lst])

    def query_all(self, queries):
        lst = os.path.join(self.work, "audfprint-queries.txt")
        res = os.path.join(self.work, "audfprint-results.jsonl")
        with open(lst, "w") as fh:
            fh.write("".join(q + "\n" for q in queries))
        run([self.args.peers_python, os.path.abspath(__file__), "--audfprint-worker",
             "--peers-dir", self.args.peers_dir, self.db, lst, res])
        out = []
        with open(res) as fh:
            for line in fh:
                r = json.loads(line)
                out.append({"hit": r["hit"], "start_s": r["start_s"], "ms": r["ms"],
                            "internal_ms": None, **({"error": r["error"]} if "error" in r else {})})
        if len(out) != len(queries):
            die(f"audfprint worker answered {len(out)} of {len(queries)} queries")
        return out


def audfprint_worker(peers_dir, db, query_list, out_path):
    """Runs inside the peers' venv: one process, the hash table loaded once, every query matched
    in turn by audfprint's own matcher (the `audfprint match -x 5` settings)."""
    sys.path.insert(0, os.path.join(peers_dir, "audfprint"))
    import audfprint  # noqa: E402  (the peer's audfprint.py)
    import docopt  # noqa: E402
    import hash_table  # noqa: E402

    args = docopt.docopt(audfprint.USAGE, argv=["match", "--dbase", db, "-x", "5"])
    analyzer = audfprint.setup_analyzer(args)
    matcher = audfprint.setup_matcher(args)
    matcher.verbose = False
    ht = hash_table.HashTable(db)
    t_hop = analyzer.n_hop / analyzer.target_sr
    with open(query_list) as fh:
        queries = [ln.rstrip("\n") for ln in fh if ln.strip()]
    with open(out_path, "w") as out:
        for i, q in enumerate(queries):
            rec = {"query": q, "hit": None, "start_s": None}
            t0 = time.perf_counter()
            try:
                rslts, _dur, _nhash = matcher.match_file(analyzer, ht, q, i)
            except Exception as e:  # a failed decode counts as a miss
                rslts = []
                rec["error"] = repr(e)[-300:]
            rec["ms"] = (time.perf_counter() - t0) * 1000.0
            if len(rslts):
                tophitid, _aligned, aligntime = rslts[0][0], rslts[0][1], rslts[0][2]
                rec["hit"] = ht.names[tophitid]
                rec["start_s"] = float(aligntime) * t_hop
            out.write(json.dumps(rec) + "\n")


class Olaf:
    name = "Olaf"

    def __init__(self, args, work):
        self.args = args
        self.home = os.path.join(work, "olaf-home")
        self.bin = os.path.join(args.peers_dir, "bin", "olaf")
        self.env = dict(os.environ, HOME=self.home)

    def index(self, archive, files):
        shutil.rmtree(self.home, ignore_errors=True)
        os.makedirs(os.path.join(self.home, ".olaf"))
        with open(os.path.join(self.args.peers_dir, "olaf_config.json")) as fh:
            config = json.load(fh)
        config["db_folder"] = os.path.join(self.home, "db") + "/"
        config["cache_folder"] = os.path.join(self.home, "cache") + "/"
        with open(os.path.join(self.home, ".olaf", "olaf_config.json"), "w") as fh:
            json.dump(config, fh, indent=2)
        for k in range(0, len(files), 200):
            run([self.bin, "store"] + files[k:k + 200], env=self.env)

    def query_all(self, queries):
        out = []
        for q in queries:
            t0 = time.perf_counter()
            p = run([self.bin, "query", "--threads", "1", q], env=self.env, check=False)
            wall = (time.perf_counter() - t0) * 1000.0
            rec = {"hit": None, "start_s": None, "ms": wall, "internal_ms": None}
            if p.returncode != 0:
                rec["error"] = p.stderr.strip()[-300:]
            best = None
            for line in p.stdout.splitlines():
                parts = [x.strip() for x in line.split(",")]
                if len(parts) != 11 or not parts[0].isdigit():
                    continue
                count = int(parts[4])
                if count > 0 and (best is None or count > best[0]):
                    # reference start minus query start: where the query's 0 s lies in the reference
                    best = (count, parts[7], float(parts[9]) - float(parts[5]))
            if best:
                rec["hit"], rec["start_s"] = best[1], best[2]
            m = re.search(r"Matched .* in ([0-9.]+)s", p.stderr)
            if m:
                rec["internal_ms"] = float(m.group(1)) * 1000.0
            out.append(rec)
        return out


# ---------------------------------------------------------------- main


def summarize(system, cond, excerpts, recs):
    n = len(recs)
    first = located = errors = 0
    start_err = []
    for ex, r in zip(excerpts, recs):
        if r.get("error"):
            errors += 1
        if same_file(r["hit"], ex["file"]):
            first += 1
            err = abs(r["start_s"] - ex["start_s"]) * 1000.0
            start_err.append(err)
            if err <= LOCATED_MS:
                located += 1
    ms = [r["ms"] for r in recs]
    internal = [r["internal_ms"] for r in recs if r.get("internal_ms") is not None]
    row = {
        "system": system,
        "condition": cond,
        "queries": n,
        "source_first": round(first / n, 4) if n else None,
        "located": round(located / n, 4) if n else None,
        "start_error_ms_median": round(statistics.median(start_err), 1) if start_err else None,
        "start_error_ms_p90": round(percentile(start_err, 90), 1) if start_err else None,
        "query_ms_median": round(statistics.median(ms), 1) if ms else None,
    }
    if internal:
        row["query_ms_internal_median"] = round(statistics.median(internal), 2)
    if errors:
        row["failed_queries"] = errors
    return row


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x):
    return "-" if x is None else f"{x:g}"


def tables(rows, systems, conditions, meta):
    by = {(r["system"], r["condition"]): r for r in rows}
    lines = [f"Archive: {meta['archive']} ({meta['recordings']} recordings, "
             f"{meta['eligible']} of >= {MIN_RECORDING_S:g} s); {meta['queries']} excerpts of "
             f"{EXCERPT_S:g} s per condition, seed {meta['seed']}; {meta['date']}; {meta['host']}.",
             "", "Source first / located (start within 300 ms):", "",
             "| condition | " + " | ".join(systems) + " |",
             "|---|" + "---|" * len(systems)]
    for c in conditions:
        cells = []
        for s in systems:
            r = by.get((s, c))
            cells.append("-" if r is None else f"{pct(r['source_first'])} / {pct(r['located'])}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "| condition | system | queries | source first | located | start error ms "
              "median / p90 | query ms median (internal) |", "|---|---|---|---|---|---|---|"]
    for c in conditions:
        for s in systems:
            r = by.get((s, c))
            if r is None:
                continue
            internal = r.get("query_ms_internal_median")
            q = num(r["query_ms_median"]) + (f" ({num(internal)})" if internal is not None else "")
            lines.append(f"| {c} | {s} | {r['queries']} | {pct(r['source_first'])} | "
                         f"{pct(r['located'])} | {num(r['start_error_ms_median'])} / "
                         f"{num(r['start_error_ms_p90'])} | {q} |")
    return "\n".join(lines) + "\n"


def main():
    if "--audfprint-worker" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--audfprint-worker", action="store_true")
        ap.add_argument("--peers-dir", required=True)
        ap.add_argument("db")
        ap.add_argument("queries")
        ap.add_argument("out")
        a = ap.parse_args()
        audfprint_worker(a.peers_dir, a.db, a.queries, a.out)
        return

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(
        description="pairalign, audfprint and Olaf on the same archive and modified excerpts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="conditions: " + ", ".join(ALL_CONDITIONS))
    ap.add_argument("--archive", required=True, help="folder of recordings (walked, links followed)")
    ap.add_argument("--conditions", default="clean,white20,speed1.05,mp3-64,chain",
                    help="comma-separated condition names (default: %(default)s)")
    ap.add_argument("--queries", type=int, default=20, help="excerpts per condition (default: 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tokenizer", action="append", default=[],
                    help="a pairalign tokenizer (repeatable or comma-separated); default vq-v2")
    ap.add_argument("--systems", default="pairalign,audfprint,olaf",
                    help="which systems to run (default: %(default)s)")
    ap.add_argument("--peers-dir", default=os.path.join(repo, "out", "peers"),
                    help="what scripts/peers.sh built (default: out/peers)")
    ap.add_argument("--work", default=None,
                    help="scratch folder for queries, databases and results "
                         "(default: out/peers-eval/ARCHIVEKEY-seedS-nN)")
    ap.add_argument("--pairalign", default=os.environ.get("PAIRALIGN_BIN"),
                    help="the pairalign binary (default: $PAIRALIGN_BIN, else target/release/"
                         "pairalign, else pairalign on PATH)")
    ap.add_argument("--reindex", action="store_true", help="rebuild the databases")
    args = ap.parse_args()

    if not args.pairalign:
        cand = os.path.join(repo, "target", "release", "pairalign")
        args.pairalign = cand if os.access(cand, os.X_OK) else shutil.which("pairalign")
    if not args.pairalign:
        die("no pairalign binary (set PAIRALIGN_BIN or --pairalign)")
    args.pairalign = os.path.abspath(args.pairalign) if os.sep in args.pairalign else args.pairalign
    args.peers_dir = os.path.abspath(args.peers_dir)
    args.peers_python = os.path.join(args.peers_dir, "venv", "bin", "python")
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            die(f"{tool} is missing (scripts/peers.sh installs it)")
    tokenizers = [t for spec in (args.tokenizer or ["vq-v2"]) for t in spec.split(",") if t]
    systems_wanted = {s.strip().lower() for s in args.systems.split(",") if s.strip()}
    unknown = systems_wanted - {"pairalign", "audfprint", "olaf"}
    if unknown:
        die(f"unknown systems: {', '.join(sorted(unknown))}")

    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bad = [c for c in conditions if c not in ALL_CONDITIONS]
    if bad:
        die(f"unknown conditions: {', '.join(bad)} (known: {', '.join(ALL_CONDITIONS)})")
    encoders = ffmpeg_encoders()
    for c in list(conditions):
        if c in CODEC_CONDITIONS and CODEC_CONDITIONS[c][0] not in encoders:
            print(f"peers_eval: ffmpeg has no {CODEC_CONDITIONS[c][0]}: skipping {c}",
                  file=sys.stderr)
            conditions.remove(c)

    archive = os.path.abspath(args.archive)
    files = list_archive(archive)
    if not files:
        die(f"no audio files under {archive}")
    key = archive_key(files)
    work = os.path.abspath(args.work or os.path.join(
        repo, "out", "peers-eval", f"{key}-seed{args.seed}-n{args.queries}"))
    os.makedirs(os.path.join(work, "db"), exist_ok=True)
    if work.startswith(repo + os.sep) and not work.startswith(os.path.join(repo, "out") + os.sep):
        die(f"{work} is inside the repository but not under out/ (gitignored)")

    durs = durations(files, os.path.join(work, "durations.json"))
    excerpts = draw_excerpts(files, durs, args.queries, args.seed)
    draw_path = os.path.join(work, "excerpts.json")
    if os.path.exists(draw_path):
        with open(draw_path) as fh:
            if json.load(fh) != excerpts:  # another draw: the old query files are stale
                shutil.rmtree(os.path.join(work, "queries"), ignore_errors=True)
    with open(draw_path, "w") as fh:
        json.dump(excerpts, fh)
    qpaths = make_queries(args, excerpts, conditions, os.path.join(work, "queries"))

    systems = []
    if "pairalign" in systems_wanted:
        systems += [Pairalign(args, t, work) for t in tokenizers]
    if "audfprint" in systems_wanted:
        if not os.access(args.peers_python, os.X_OK):
            die(f"no {args.peers_python}: run scripts/peers.sh first")
        systems.append(Audfprint(args, work))
    if "olaf" in systems_wanted:
        if not os.access(os.path.join(args.peers_dir, "bin", "olaf"), os.X_OK):
            die(f"no olaf under {args.peers_dir}/bin: run scripts/peers.sh first")
        systems.append(Olaf(args, work))

    index_info = {}
    for s in systems:
        stamp = os.path.join(work, "db", re.sub(r"[^A-Za-z0-9._-]", "_", s.name) + ".indexed")
        if not args.reindex and os.path.exists(stamp) and open(stamp).read().strip() == key:
            continue
        if os.path.exists(stamp):
            os.remove(stamp)
        t0 = time.perf_counter()
        s.index(archive, files)
        index_info[s.name] = round(time.perf_counter() - t0, 1)
        with open(stamp, "w") as fh:
            fh.write(key + "\n")
        print(f"peers_eval: indexed {len(files)} recordings with {s.name} in "
              f"{index_info[s.name]} s", file=sys.stderr)

    rows = []
    per_query = []
    for cond in conditions:
        for s in systems:
            recs = s.query_all(qpaths[cond])
            row = summarize(s.name, cond, excerpts, recs)
            if getattr(s, "weights", None):
                row["tokenizer"] = s.weights
            rows.append(row)
            print(json.dumps(row), flush=True)
            for ex, q, r in zip(excerpts, qpaths[cond], recs):
                per_query.append({"system": s.name, "condition": cond, "query": q,
                                  "source": ex["file"], "true_start_s": ex["start_s"], **r})

    meta = {
        "archive": archive, "recordings": len(files),
        "eligible": sum(1 for f in files if durs[f] >= MIN_RECORDING_S),
        "queries": args.queries, "seed": args.seed,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "host": f"{os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.1f} at the end",
    }
    with open(os.path.join(work, "results.jsonl"), "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    with open(os.path.join(work, "queries.jsonl"), "w") as fh:
        for r in per_query:
            fh.write(json.dumps(r) + "\n")
    md = tables(rows, [s.name for s in systems], conditions, meta)
    with open(os.path.join(work, "table.md"), "w") as fh:
        fh.write(md)
    print()
    print(md)
    print(f"peers_eval: results in {work}/results.jsonl, table.md, queries.jsonl", file=sys.stderr)


if __name__ == "__main__":
    main()
