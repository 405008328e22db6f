"""`pairalign.ray` on a local Ray cluster started here (2 CPUs): the samples indexed into 2 shards
by Ray Data workers hold what one archive indexed from them holds; a worker killed mid-run
loses nothing; sharded search on Ray Serve answers exactly what the one archive answers (clips,
tokens, filters, over the handle and over HTTP); a killed shard replica is survived; a shard
moves to a newer commit when its MANIFEST generation changes. Skipped without Ray
(scripts/setup-python.sh installs it)."""

import http.client
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import pairalign
from conftest import LONG_WAV, SAMPLES, SHORT_WAV, read_wav, write_wav

ray = pytest.importorskip("ray", reason="Ray is not installed (scripts/setup-python.sh installs it)")
from ray import serve  # noqa: E402

from pairalign import ray as pray  # noqa: E402

TAGS = ["sample"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def sharded(cluster, tmp_path_factory):
    """The samples indexed into 2 shards by 2 workers, and the report."""
    db = tmp_path_factory.mktemp("sharded") / "samples"
    report = pray.index(db, [SAMPLES], shards=2, workers=2, files_per_task=3, tags=TAGS)
    return db, report


def processes(title):
    """Pids of the processes whose command line (Ray's process title) starts with `title`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith(title):
            found.append(int(entry))
    return found


def listing(readers):
    """Every catalog entry of `readers`, by id, without the time it was indexed."""
    entries = {}
    for reader in readers:
        for asset in reader.assets(limit=10_000)["assets"]:
            asset.pop("indexed_at")
            entries[asset["id"]] = asset
    return entries


def hits(results):
    """The hits without timings: what must be equal."""
    return [
        (h["id"], h["start"], h["end"], h["start_ms"], h["end_ms"], h["distance"], h["norm_distance"])
        for h in results["hits"]
    ]


def test_ray_workers_index_into_shards_what_one_archive_holds(sharded, indexed):
    db, report = sharded
    archive, one = indexed
    assert (report["files_found"], report["indexed"], report["failed"]) == (20, 20, [])
    assert report["tokens"] == one["tokens"]
    dirs = pairalign.shard_dirs(db)
    assert [d.name for d in dirs] == ["shard-0000", "shard-0001"]
    readers = [pairalign.Reader(d) for d in dirs]
    for index, reader in enumerate(readers):
        for asset in reader.assets(limit=100)["assets"]:
            assert pairalign.shard_of(asset["id"], 2) == index
    assert listing(readers) == listing([archive])
    # A rerun finds everything committed.
    again = pray.index(db, [SAMPLES], workers=2, tags=TAGS)
    assert (again["indexed"], again["skipped"]) == (0, 20)


def test_a_worker_killed_mid_run_loses_nothing(cluster, tmp_path, indexed):
    archive, _ = indexed
    db = tmp_path / "killed"
    killed = []
    # Workers of earlier runs may linger a moment: only one of this run's counts.
    earlier = set(processes("ray::MapWorker"))

    def kill_a_worker(progress):
        if killed:
            return
        workers = [pid for pid in processes("ray::MapWorker") if pid not in earlier]
        assert workers, "a Ray Data worker of this run is running"
        os.kill(workers[0], signal.SIGKILL)
        killed.append(workers[0])

    report = pray.index(
        db, [SAMPLES], shards=2, workers=1, files_per_task=1, tags=TAGS, progress=kill_a_worker
    )
    assert killed, "the progress callback ran"
    if not pairalign.CUDA:
        with pytest.raises(pairalign.InvalidInputError, match="CUDA"):
            pray.index(db, [SAMPLES], gpus_per_worker=1)
    assert (report["indexed"], report["failed"]) == (20, [])
    readers = [pairalign.Reader(d) for d in pairalign.shard_dirs(db)]
    assert listing(readers) == listing([archive])


def test_the_command_line_indexes_and_reports(cluster, tmp_path, capsys):
    db = tmp_path / "cli"
    short = SAMPLES / "short"
    code = pray.main(["index", "--db", str(db), "--shards", "3", "--workers", "1",
                      "--tag", "cli", str(short)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["failed"] == []
    assert report["indexed"] == len(list(short.iterdir())) > 0
    assert len(pairalign.shard_dirs(db)) == 3
    # A bad file fails alone, and makes the exit status 1.
    bad = tmp_path / "more"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF....WAVEfmt not really")
    code = pray.main(["index", "--db", str(db), "--workers", "1", str(bad)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and [f["path"] for f in report["failed"]] == [str(bad / "broken.wav")]
    for reader in [pairalign.Reader(d) for d in pairalign.shard_dirs(db)]:
        for asset in reader.assets()["assets"]:
            assert asset["tags"] == ["cli"]
    # Workers larger than the cluster would wait forever: refused at once.
    (bad / "broken.wav").unlink()
    write_wav(bad / "new.wav", read_wav(LONG_WAV)[0][: 16000 * 4], 16000)
    with pytest.raises(pairalign.InvalidInputError, match="the Ray cluster has 2"):
        pray.index(db, [bad], cpus_per_worker=3)


@pytest.fixture(scope="module")
def service(sharded):
    db, _ = sharded
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    handle = serve.run(pray.serve_app(db), name="pairalign", route_prefix="/")
    return handle, f"http://127.0.0.1:{port}/v1/search"


def post(url, body, content_type):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_sharded_search_answers_what_one_archive_answers(service, indexed, tmp_path):
    handle, url = service
    archive, _ = indexed
    tokenizer = pairalign.Tokenizer()
    samples, rate = read_wav(LONG_WAV)
    for start_s, options in [(5.0, {}), (20.0, {"top": 20}), (31.5, {"k": 0.5, "filter": "tags:sample"})]:
        clip = samples[int(start_s * rate) : int((start_s + 3.0) * rate)]
        query = tokenizer.query(clip, rate)
        sharded = handle.search.remote(query, **options).result()
        one = archive.search_audio(clip, rate, **options)
        assert hits(sharded) == hits(one), (start_s, options)
        assert (sharded["k"], sharded["query_tokens"], sharded["lossless"]) == (
            one["k"], one["query_tokens"], one["lossless"]
        )
        assert sharded["hits"][0]["id"] == str(LONG_WAV)
    tokens = [int(t) for t in tokenizer.tokenize(SHORT_WAV)[0][:30]]
    assert hits(handle.search.remote(tokens, k=0.4, top=15).result()) == hits(
        archive.search_tokens(tokens, k=0.4, top=15)
    )

    # Over HTTP: a clip as the body, tokens as JSON, and errors as the Rust server words them.
    clip_path = tmp_path / "clip.wav"
    write_wav(clip_path, samples[12 * rate : 15 * rate], rate)
    status, body = post(url + "?top=5", clip_path.read_bytes(), "audio/wav")
    assert status == 200, body
    assert hits(body) == hits(archive.search_file(clip_path, top=5))
    assert body["tokenize_ms"] > 0
    status, body = post(url, json.dumps({"tokens": tokens, "top": 3}).encode(), "application/json")
    assert (status, hits(body)) == (200, hits(archive.search_tokens(tokens, top=3)))
    status, body = post(url, json.dumps({"tokens": tokens, "filter": "tags:("}).encode(),
                        "application/json")
    assert status == 400 and body["error"]["code"] == "bad_request", body
    assert body["error"]["message"].startswith("bad filter"), body
    status, body = post(url, b"not audio at all", "audio/wav")
    assert status == 422 and body["error"]["code"] == "undecodable_audio", body
    status, body = post(url, b"x", "text/plain")
    assert status == 415, body
    status, body = post(url, json.dumps({"tokens": tokens, "top": pray.MAX_TOP + 1}).encode(),
                        "application/json")
    assert status == 400 and "top must be" in body["error"]["message"], body
    # A body declared over the limit is refused before it is sent.
    host, port = url.split("/")[2].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.putrequest("POST", "/v1/search")
    connection.putheader("Content-Type", "audio/wav")
    connection.putheader("Content-Length", str(pray.MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 413 and body["error"]["code"] == "payload_too_large", body
    connection.close()


def test_a_killed_shard_replica_is_survived(service, indexed):
    handle, _ = service
    archive, _ = indexed
    tokenizer = pairalign.Tokenizer()
    samples, rate = read_wav(LONG_WAV)
    clip = samples[8 * rate : 11 * rate]
    query = tokenizer.query(clip, rate)
    expected = hits(archive.search_audio(clip, rate))
    replicas = processes("ray::ServeReplica:pairalign:shard-0000")
    assert replicas, "shard-0000 has a replica"
    os.kill(replicas[0], signal.SIGKILL)
    # Right after the kill: the right answer (retried on a restarted replica) or a clear error,
    # never a partial one.
    try:
        assert hits(handle.search.remote(query).result()) == expected
    except Exception as e:  # noqa: BLE001 - which class Serve raises is its business
        assert "shard 0 did not answer" in str(e), e
    deadline = time.monotonic() + 90
    while True:
        try:
            assert hits(handle.search.remote(query).result()) == expected
            break
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_shards_move_to_a_newer_commit(service, sharded, tmp_path):
    handle, _ = service
    db, _ = sharded
    samples, rate = read_wav(LONG_WAV)
    # New content: a stretch of the long sample, quieter (another hash), in a new file.
    new = tmp_path / "new" / "quiet_excerpt.wav"
    new.parent.mkdir()
    write_wav(new, 0.5 * samples[2 * rate : 14 * rate], rate)
    tokenizer = pairalign.Tokenizer()
    query = tokenizer.query(new)
    before = handle.search.remote(query, top=50).result()
    assert str(new.resolve()) not in [h["id"] for h in before["hits"]]
    # A worker of a quarter CPU fits beside the replicas' reservations.
    report = pray.index(db, [new.parent], workers=1, cpus_per_worker=0.25, tags=TAGS)
    assert report["indexed"] == 1
    after = handle.search.remote(query, top=5).result()
    assert after["hits"][0]["id"] == str(new.resolve())
    assert after["hits"][0]["distance"] == 0
