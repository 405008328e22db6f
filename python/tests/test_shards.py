"""The pieces a distributed run is made of, without Ray: `Tokenizer` (a clip tokenized once,
a file prepared for a writer elsewhere), `Query` (pickled to other processes), `ShardWriter`
(plan, add, finish, refusals) and `Reader` (read only beside a writer; `reload` on a newer
commit)."""

import pickle

import numpy as np
import pytest

import pairalign
from conftest import LONG_WAV, SAMPLES, SHORT_WAV, read_wav, write_wav


def test_a_query_tokenized_once_searches_like_search_audio_and_pickles(indexed):
    archive, _ = indexed
    tokenizer = pairalign.Tokenizer()
    assert tokenizer.id == pairalign.DEFAULT_TOKENIZER == archive.tokenizer
    samples, rate = read_wav(LONG_WAV)
    clip = samples[10 * rate : 13 * rate]
    query = tokenizer.query(clip, rate)
    assert query.phases >= 1 and len(query) == len(query.tokens) > 0
    copy = pickle.loads(pickle.dumps(query))
    assert copy.to_bytes() == query.to_bytes()
    via_query = archive.search_query(copy, top=5)
    direct = archive.search_audio(clip, rate, top=5)
    strip = lambda r: [(h["id"], h["start"], h["start_ms"], h["distance"]) for h in r["hits"]]
    assert strip(via_query) == strip(direct)
    assert via_query["hits"][0]["id"] == str(LONG_WAV)
    from_bytes = tokenizer.query_bytes(SHORT_WAV.read_bytes(), "short.wav")
    assert np.array_equal(from_bytes.tokens, tokenizer.query(SHORT_WAV).tokens)
    with pytest.raises(pairalign.InvalidInputError):
        pairalign.Query.from_bytes(b"{}")
    with pytest.raises(pairalign.InvalidInputError, match="clip"):
        tokenizer.query(clip[: rate // 4], rate)
    with pytest.raises(pairalign.DecodeError):
        tokenizer.query_bytes(b"not audio", "bad.wav")
    decoded, decoded_rate = pairalign.decode(LONG_WAV)
    assert decoded_rate == rate == 16000 and decoded.dtype == np.float32
    assert len(decoded) == len(samples) and np.max(np.abs(decoded - samples)) < 1e-4


def test_a_shard_writer_takes_prepared_files_and_readers_follow_its_commits(tmp_path, indexed):
    archive, _ = indexed
    tokenizer = pairalign.Tokenizer()
    db = tmp_path / "sharded"
    files = sorted((SAMPLES / "short").iterdir())[:6]
    with pairalign.ShardWriter(db, 3, batch_files=2) as writer:
        assert writer.shards == 3 and writer.tokenizer == tokenizer.id
        plan = writer.plan(files)
        assert plan["files_found"] == len(plan["files"]) == 6
        for f in plan["files"]:
            assert f["shard"] == pairalign.shard_of(f["id"], 3)
            assert writer.add(tokenizer.prepare_file(f["path"])) == "pending"
    readers = [pairalign.Reader(d) for d in pairalign.shard_dirs(db)]
    generations = [r.generation for r in readers]
    ids = sorted(a["id"] for r in readers for a in r.assets()["assets"])
    assert ids == sorted(str(f.resolve()) for f in files)
    for reader in readers:
        for asset in reader.assets()["assets"]:
            assert asset == {**archive.asset(asset["id"]), "indexed_at": asset["indexed_at"],
                             "tags": []}

    # A new file committed while the readers are open: they see it after `reload`.
    samples, rate = read_wav(LONG_WAV)
    new = tmp_path / "new.wav"
    write_wav(new, 0.7 * samples[: 6 * rate], rate)
    writer = pairalign.ShardWriter(db)
    assert len(writer.plan([new])["files"]) == 1
    assert writer.add(tokenizer.prepare_file(new)) == "pending"
    # A copy under another name is a duplicate, wherever it would go.
    copy = tmp_path / "copy.wav"
    copy.write_bytes(new.read_bytes())
    assert writer.add(tokenizer.prepare_file(copy)) == ("duplicate", str(new.resolve()))
    report = writer.finish()
    assert (report["indexed"], len(report["duplicates"])) == (1, 1)
    shard = pairalign.shard_of(str(new.resolve()), 3)
    assert readers[shard].asset(str(new.resolve())) is None
    assert [r.reload() for r in readers] == [i == shard for i in range(3)]
    assert readers[shard].generation > generations[shard]
    assert readers[shard].asset(str(new.resolve()))["tokens"] > 0
    assert not readers[shard].reload()


def test_shard_writers_refuse_what_does_not_fit(tmp_path):
    tokenizer = pairalign.Tokenizer()
    db = tmp_path / "sharded"
    with pytest.raises(pairalign.InvalidInputError, match="number of shards"):
        pairalign.ShardWriter(db)
    pairalign.ShardWriter(db, 2).finish()
    with pytest.raises(pairalign.InvalidInputError, match="has 2 shards, not 3"):
        pairalign.ShardWriter(db, 3)
    with pytest.raises(pairalign.TokenizerMismatchError):
        pairalign.ShardWriter(db, 2, tokenizer="vq")
    writer = pairalign.ShardWriter(db, 2)
    with pytest.raises(pairalign.ConflictError):
        pairalign.ShardWriter(db, 2)  # the first one holds the locks
    with pytest.raises(pairalign.TokenizerMismatchError):
        writer.add(pairalign.Tokenizer("vq").prepare_file(SHORT_WAV))
    with pytest.raises(pairalign.InvalidInputError, match="not a prepared recording"):
        writer.add(b"garbage")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are notes, not audio")
    with pytest.raises(pairalign.DecodeError):
        tokenizer.prepare_file(not_audio)
    writer.close()
    with pytest.raises(pairalign.Error, match="finished or closed"):
        writer.plan([SHORT_WAV])
    with pytest.raises(pairalign.InvalidInputError):
        pairalign.shard_of("a", 0)
    with pytest.raises(pairalign.InvalidInputError, match="cpu, cuda or cuda:N"):
        pairalign.Tokenizer(device="tpu")
    if not pairalign.CUDA:
        with pytest.raises(pairalign.InvalidInputError, match="cuda feature"):
            pairalign.Tokenizer(device="cuda")
    with pytest.raises(pairalign.InvalidInputError, match="not a sharded archive"):
        pairalign.shard_dirs(tmp_path)
