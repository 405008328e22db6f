"""PairAlign Search past one machine, on Ray: bulk indexing with Ray Data and sharded search with
Ray Serve.

Bulk indexing (``index``, or ``python -m pairalign.ray index``): the driver walks the paths and
plans the files a sharded archive does not hold yet (``ShardWriter.plan``); Ray Data hands them
to workers, each a process holding one tokenizer (``Tokenizer.prepare_file``: hash, decode,
tokenize; ``num_gpus`` per worker when the cluster has GPUs), a few files per task; the driver,
the archive's one writer, adds what comes back to the shard a stable hash of each file's id
names (``shard_of``) and commits a batch per shard at a time. A rerun skips what is committed;
a dead worker's task is retried by Ray, so it loses at most that task's files; a dead driver
loses at most the batches it had not committed.

Sharded search (``serve_app``, or ``python -m pairalign.ray serve``): one Serve deployment per
shard (``replicas`` each) holding the shard read only (``Reader``, which moves to a newer
commit when the shard's MANIFEST generation changes), and an ingress that tokenizes a clip once
(``Tokenizer.query``), sends the query to every shard, and merges their best hits into the
reply of ``POST /v1/search`` (the same JSON as the Rust server's). Needs ``pip install
'ray[data,serve]'`` (or ``pip install './python[ray]'``).
"""

import argparse
import asyncio
import json
import math
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

import pairalign

try:
    import ray
    from ray import serve
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pairalign.ray needs Ray: pip install 'ray[data,serve]' (or './python[ray]')"
    ) from e

_Path = Union[str, "os.PathLike[str]"]

#: Hits a search may ask for: the Rust server's default ``max_top``.
MAX_TOP = 100

#: The largest search request body read: the Rust server's default ``max_search_body_bytes``.
MAX_BODY_BYTES = 32 << 20


class _TooLarge(Exception):
    """A request body over ``MAX_BODY_BYTES``."""


async def _read_body(request) -> bytes:
    """The request's body, refused (``_TooLarge``) as soon as it passes ``MAX_BODY_BYTES``,
    without reading the rest: a declared length over it is refused before reading at all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)

#: How long a search waits before asking again a shard that failed to answer (its replica
#: died or is restarting); a second failure answers 503.
SHARD_RETRY_S = 2.0

#: How long a search waits for one shard's answer before counting it as a failure.
SHARD_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------
# Bulk indexing on Ray Data


class _Prepare:
    """A Ray Data worker: one tokenizer per process, a batch of files per call. A file that
    cannot be indexed comes back with its reason instead of its recording."""

    def __init__(self, tokenizer: Optional[str], device: str, title: Optional[str],
                 tags: Sequence[str]):
        self.tokenizer = pairalign.Tokenizer(tokenizer, device=device)
        self.title = title
        self.tags = list(tags)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        records, errors = [], []
        for path, doc_id in zip(batch["path"], batch["id"]):
            try:
                record = self.tokenizer.prepare_file(
                    str(path), str(doc_id), title=self.title, tags=self.tags
                )
                records.append(record)
                errors.append("")
            except pairalign.Error as e:
                records.append(b"")
                errors.append(str(e))
        return {
            "path": batch["path"],
            "record": np.array(records, dtype=object),
            "error": np.array(errors, dtype=object),
        }


def index(
    db: _Path,
    paths: Iterable[_Path],
    *,
    shards: int = 0,
    workers: Optional[int] = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: Optional[float] = None,
    tokenizer: Optional[str] = None,
    files_per_task: int = 4,
    batch_files: int = 32,
    batch_seconds: float = 1800.0,
    title: Optional[str] = None,
    tags: Sequence[str] = (),
    compact_above: Optional[int] = 8,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Indexes the audio files under ``paths`` into the sharded archive ``db`` (created with
    ``shards`` shards when missing; 0: the count it has) on the Ray cluster ``ray.init()``
    connected to (a local one is started when none is). ``workers`` processes tokenize
    (default: one per ``cpus_per_worker`` CPUs of the cluster), each with ``gpus_per_worker``
    GPUs, tokenizing on CUDA (the module built with ``--features cuda``: ``pairalign.CUDA``).
    ``gpus_per_worker`` None: the cluster's GPUs shared by the workers when it has some and the
    module can use them, else none;
    ``files_per_task`` files go to a worker at a time. Returns the report of
    ``Archive.add_file`` (indexed, skipped, duplicates, failed, ...). ``progress``, when given,
    is called with ``{"files_total", "files_done", "indexed", "failed", "wall_s"}``
    after every task that comes back. Interrupted (Ctrl-C), it commits what it holds first."""
    if files_per_task < 1:
        raise pairalign.InvalidInputError(f"files_per_task must be at least 1, got {files_per_task}")
    if gpus_per_worker and not pairalign.CUDA:
        raise pairalign.InvalidInputError(
            "gpus_per_worker needs a module built with CUDA (maturin build --features cuda)"
        )
    started = time.monotonic()
    writer = pairalign.ShardWriter(
        db,
        shards,
        tokenizer=tokenizer,
        batch_files=batch_files,
        batch_seconds=batch_seconds,
    )
    try:
        plan = writer.plan([os.fspath(p) for p in paths])
        files = plan["files"]
        done = {"files_total": len(files), "files_done": 0, "indexed": 0, "failed": 0,
                "wall_s": 0.0}
        if files:
            if not ray.is_initialized():
                ray.init()
            resources = ray.cluster_resources()
            if cpus_per_worker > resources.get("CPU", 0.0):
                raise pairalign.InvalidInputError(
                    f"a worker asks {cpus_per_worker} CPUs; the Ray cluster has "
                    f"{resources.get('CPU', 0.0):g}"
                )
            free = ray.available_resources().get("CPU", 0.0)
            if free < cpus_per_worker:
                warnings.warn(
                    f"only {free:g} of the cluster's CPUs are free (Serve replicas or other jobs "
                    f"hold the rest): the workers, {cpus_per_worker:g} CPUs each, wait for them",
                    stacklevel=2,
                )
            if workers is None:
                cpus = resources.get("CPU", 1.0)
                workers = max(1, int(cpus // max(cpus_per_worker, 1e-9)))
            if gpus_per_worker is None:
                gpus = resources.get("GPU", 0.0) if pairalign.CUDA else 0.0
                gpus_per_worker = min(1.0, gpus / workers) if gpus else 0.0

            threads = max(1, int(math.ceil(cpus_per_worker)))
            items = [{"path": f["path"], "id": f["id"]} for f in files]
            dataset = ray.data.from_items(
                items, override_num_blocks=max(1, math.ceil(len(items) / files_per_task))
            ).map_batches(
                _Prepare,
                fn_constructor_kwargs={
                    "tokenizer": tokenizer,
                    # Ray gives each worker its GPUs as CUDA device 0 onwards.
                    "device": "cuda" if gpus_per_worker > 0 else "cpu",
                    "title": title,
                    "tags": list(tags),
                },
                batch_size=files_per_task,
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker,
                # One tokenizer's threads per worker's CPUs, not per machine's.
                runtime_env={"env_vars": {"RAYON_NUM_THREADS": str(threads)}},
            )
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for path, record, error in zip(batch["path"], batch["record"], batch["error"]):
                    if error:
                        writer.fail(str(path), str(error))
                        done["failed"] += 1
                    else:
                        if writer.add(bytes(record)) == "pending":
                            done["indexed"] += 1
                    done["files_done"] += 1
                if progress is not None:
                    done["wall_s"] = time.monotonic() - started
                    progress(dict(done))
        report = writer.finish(compact_above)
    except BaseException:
        # Keep what workers have delivered: commit it, as `pairalign index` does when stopped.
        try:
            writer.flush()
        finally:
            writer.close()
        raise
    report["wall_s"] = time.monotonic() - started
    report["realtime"] = report["audio_s"] / max(report["wall_s"], 1e-9)
    return report


# ---------------------------------------------------------------------------------------------
# Sharded search on Ray Serve


def merge_results(parts: Sequence[Dict[str, Any]], top: int) -> Dict[str, Any]:
    """The reply of one archive holding the documents of all ``parts`` (the replies of shards,
    which hold disjoint documents, to the same query): their hits best first, by normalized
    distance, distance, id and start (the order of one archive's reply), at most ``top``;
    ``lossless`` when every shard's search was; the slowest shard's ``search_ms``."""
    if not parts:
        raise pairalign.InvalidInputError("no shard replies to merge")
    hits = sorted(
        (hit for part in parts for hit in part["hits"]),
        key=lambda h: (h["norm_distance"], h["distance"], h["id"], h["start"]),
    )
    first = parts[0]
    return {
        "hits": hits[:top],
        "query_tokens": first["query_tokens"],
        "k": first["k"],
        "lossless": all(p["lossless"] for p in parts),
        "tokenize_ms": first["tokenize_ms"],
        "search_ms": max(p["search_ms"] for p in parts),
    }


@serve.deployment
class Shard:
    """One shard of a sharded archive, read only. Before each search it checks the shard's
    MANIFEST generation and moves to a newer commit (a writer added or deleted)."""

    def __init__(self, dir: str, tokenizer: Optional[str] = None):
        self.reader = pairalign.Reader(dir, tokenizer)

    def search(self, query: Any, k: Any = None, top: Optional[int] = None,
               filter: Optional[str] = None) -> Dict[str, Any]:
        """``query``: a ``pairalign.Query`` (a clip) or a list of tokens."""
        self.reader.reload()
        if isinstance(query, pairalign.Query):
            return self.reader.search_query(query, k=k, top=top, filter=filter)
        return self.reader.search_tokens(query, k=k, top=top, filter=filter)

    def generation(self) -> int:
        self.reader.reload()
        return self.reader.generation


class ShardUnavailable(pairalign.Error):
    """A shard did not answer, also when asked again (its replicas are down or restarting)."""


def _error_body(status: int, code: str, message: str):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _params(source: Dict[str, Any]) -> Dict[str, Any]:
    """``top``, ``k`` and ``filter`` of a request, checked as the Rust server checks them."""
    unknown = set(source) - {"top", "k", "filter"}
    if unknown:
        raise pairalign.InvalidInputError(f"unknown search options: {sorted(unknown)}")
    top = source.get("top")
    if top is not None:
        top = int(top)
        if not 1 <= top <= MAX_TOP:
            raise pairalign.InvalidInputError(f"top must be 1 to {MAX_TOP}, got {top}")
    k = source.get("k")
    if isinstance(k, str):
        k = float(k) if any(c in k for c in ".eE") else int(k)
    return {"top": top, "k": k, "filter": source.get("filter")}


@serve.deployment
class Search:
    """The ingress: ``POST /v1/search`` with a clip as the body (``Content-Type: audio/...``;
    ``top``, ``k``, ``filter`` in the query string) or a JSON body ``{"tokens": [...], "top",
    "k", "filter"}``; the same reply as the Rust server's. The clip is tokenized once, here."""

    def __init__(self, shards: List[Any], tokenizer: Optional[str] = None):
        self.shards = shards
        self.tokenizer = pairalign.Tokenizer(tokenizer)

    async def search(self, query: Any, *, k: Any = None, top: Optional[int] = None,
                     filter: Optional[str] = None) -> Dict[str, Any]:
        """The merged reply of every shard to ``query`` (a ``pairalign.Query`` or tokens)."""
        top = 10 if top is None else top
        parts = await asyncio.gather(
            *(self._ask(i, shard, query, k, top, filter) for i, shard in enumerate(self.shards))
        )
        return merge_results(parts, top)

    async def search_clip(self, data: bytes, *, name: Optional[str] = None, **options):
        """Tokenizes the encoded clip ``data`` once and searches every shard."""
        query = await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.tokenizer.query_bytes(data, name)
        )
        return await self.search(query, **options)

    async def _ask(self, index: int, shard: Any, query: Any, k: Any, top: int,
                   filter: Optional[str]) -> Dict[str, Any]:
        last: Optional[BaseException] = None
        for attempt in range(2):
            try:
                return await asyncio.wait_for(
                    shard.search.remote(query, k, top, filter), SHARD_TIMEOUT_S
                )
            except ray.exceptions.RayTaskError as e:
                # An exception the shard raised (bad filter, ...): the caller's, not the shard's;
                # raised with its own message (the wrapper's carries the remote traceback).
                cause = getattr(e, "cause", None)
                if isinstance(cause, pairalign.Error):
                    raise cause from None
                raise
            except Exception as e:  # the replica died, is restarting, or hangs
                last = e
                if attempt == 0:
                    await asyncio.sleep(SHARD_RETRY_S)
        raise ShardUnavailable(f"shard {index} did not answer: {type(last).__name__}: {last}")

    async def __call__(self, request):
        if request.url.path.rstrip("/") != "/v1/search":
            return _error_body(404, "not_found", f"no route {request.url.path}")
        if request.method != "POST":
            return _error_body(405, "method_not_allowed", "POST /v1/search")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind == "application/json":
                try:
                    body = json.loads(await _read_body(request))
                    tokens = body.pop("tokens")
                except (ValueError, KeyError, AttributeError, TypeError) as e:
                    raise pairalign.InvalidInputError(
                        f"the JSON body needs \"tokens\": {type(e).__name__}: {e}"
                    ) from None
                options = _params(body)
                if options["k"] is None:
                    options["k"] = 0.4
                results = await self.search(list(tokens), **options)
            elif kind.startswith("audio/") or kind == "application/octet-stream":
                options = _params(dict(request.query_params))
                results = await self.search_clip(await _read_body(request), **options)
            else:
                return _error_body(
                    415,
                    "unsupported_media_type",
                    f"content type {kind!r}: send the clip as the body (audio/*) or tokens as "
                    "application/json",
                )
        except _TooLarge:
            return _error_body(
                413, "payload_too_large", f"a search request body is at most {MAX_BODY_BYTES} bytes"
            )
        except ShardUnavailable as e:
            return _error_body(503, "unavailable", str(e))
        except pairalign.DecodeError as e:
            return _error_body(422, "undecodable_audio", str(e))
        except pairalign.TokenizerMismatchError as e:
            return _error_body(409, "tokenizer_mismatch", str(e))
        except (pairalign.InvalidInputError, ValueError) as e:
            return _error_body(400, "bad_request", str(e))
        from starlette.responses import JSONResponse

        return JSONResponse(results)


def serve_app(db: _Path, *, replicas: int = 1, tokenizer: Optional[str] = None,
              cpus_per_replica: float = 0.1):
    """The Serve application of the sharded archive ``db``: a ``Shard`` deployment per shard
    (``shard-0000``, ... with ``replicas`` replicas each) and the ``Search`` ingress. Run it
    with ``serve.run(serve_app(db))``; its handle's ``search``/``search_clip`` and HTTP
    ``POST /v1/search`` answer. ``cpus_per_replica`` is what Ray reserves for each replica
    (small by default, so that many shards fit one machine; on a cluster, reserve what a
    replica uses: a shard's search runs on up to all its node's cores)."""
    shard_dirs = pairalign.shard_dirs(db)
    shards = [
        Shard.options(
            name=f"shard-{i:04d}",
            num_replicas=replicas,
            ray_actor_options={"num_cpus": cpus_per_replica},
        ).bind(str(d), tokenizer)
        for i, d in enumerate(shard_dirs)
    ]
    return Search.options(ray_actor_options={"num_cpus": cpus_per_replica}).bind(shards, tokenizer)


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pairalign.ray",
        description="PairAlign Search on Ray: bulk indexing into shards, sharded search.",
    )
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, or a local one)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index", help="index audio files into a sharded archive on Ray Data")
    p.add_argument("--db", required=True, help="the sharded archive's folder")
    p.add_argument("--shards", type=int, default=0, help="shards of a new archive")
    p.add_argument("--workers", type=int, help="tokenizing processes (default: one per CPU)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--gpus-per-worker", type=float,
                   help="default: the cluster's GPUs shared by the workers (a CUDA build)")
    p.add_argument("--tokenizer", help="for a new archive (default pairalign-v3)")
    p.add_argument("--files-per-task", type=int, default=4)
    p.add_argument("--batch-files", type=int, default=32)
    p.add_argument("--tag", action="append", default=[], dest="tags")
    p.add_argument("--title")
    p.add_argument("paths", nargs="+")
    s = sub.add_parser("serve", help="serve sharded search on Ray Serve")
    s.add_argument("--db", required=True)
    s.add_argument("--replicas", type=int, default=1)
    s.add_argument("--tokenizer")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    if not ray.is_initialized():
        ray.init(address=args.address, log_to_driver=False)
    if args.command == "index":
        def show(p):
            print(f"\r{p['files_done']}/{p['files_total']} files, {p['wall_s']:.0f} s",
                  end="", file=sys.stderr, flush=True)

        report = index(
            args.db, args.paths, shards=args.shards, workers=args.workers,
            cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
            tokenizer=args.tokenizer, files_per_task=args.files_per_task,
            batch_files=args.batch_files, title=args.title, tags=args.tags,
            progress=show if sys.stderr.isatty() else None,
        )
        print(json.dumps(report, indent=2))
        return 1 if report["failed"] else 0
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(serve_app(args.db, replicas=args.replicas, tokenizer=args.tokenizer),
              name="pairalign", route_prefix="/")
    print(f"serving {args.db} on http://{args.host}:{args.port}/v1/search", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
