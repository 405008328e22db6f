"""The `pairalign` module against the bundled samples: indexing, query by example from numpy
arrays and files, token search, adding samples from numpy, deleting, the exceptions (class and
the Rust error's message) and the GIL released while it works."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pairalign
from conftest import LONG_WAV, SAMPLES, SHORT_WAV, read_wav, resample, write_wav


def test_indexing_the_samples_indexes_every_file(indexed):
    archive, report = indexed
    assert report["files_found"] == 20
    assert report["indexed"] == 20
    assert report["failed"] == []
    assert report["tokenizer"]["id"] == pairalign.DEFAULT_TOKENIZER == archive.tokenizer
    stats = archive.stats()
    assert stats["docs"] == 20
    assert stats["tokens"] == report["tokens"]
    assert 10 < stats["tokens_per_s"] < 16
    page = archive.assets("tags:sample", limit=5)
    assert page["total"] == 20 and len(page["assets"]) == 5


@pytest.mark.parametrize("rate", [16000, 48000])
def test_a_clip_cut_from_a_sample_finds_its_source_first(indexed, rate):
    archive, _ = indexed
    samples, source_rate = read_wav(LONG_WAV)
    start_s = 20.0
    clip = samples[int(start_s * source_rate) : int((start_s + 3.0) * source_rate)]
    results = archive.search_audio(resample(clip, source_rate, rate), rate, top=5)
    best = results["hits"][0]
    assert best["id"] == str(LONG_WAV)
    assert abs(best["start_ms"] - start_s * 1000) <= 250, best
    assert abs(best["end_ms"] - (start_s + 3.0) * 1000) <= 500, best
    assert set(best) == {"id", "start", "end", "start_ms", "end_ms", "distance", "norm_distance"}
    assert results["query_tokens"] > 0 and results["tokenize_ms"] > 0
    assert len(results["hits"]) <= 5


def test_search_file_finds_what_search_audio_finds(indexed, tmp_path):
    archive, _ = indexed
    samples, rate = read_wav(LONG_WAV)
    clip = samples[12 * rate : 15 * rate]
    path = tmp_path / "clip.wav"
    write_wav(path, clip, rate)
    from_file = archive.search_file(path, filter="tags:sample")
    from_array = archive.search_audio(clip, rate)
    assert from_file["hits"][0]["id"] == str(LONG_WAV)
    assert [(h["id"], h["start"]) for h in from_file["hits"][:3]] == [
        (h["id"], h["start"]) for h in from_array["hits"][:3]
    ]


def test_fewer_query_phases_search_fewer_strings_and_find_the_source(indexed):
    archive, _ = indexed
    samples, rate = read_wav(LONG_WAV)
    clip = samples[20 * rate : 23 * rate]
    four = pairalign.Tokenizer(archive.tokenizer).query(clip, rate)
    two = pairalign.Tokenizer(archive.tokenizer, phases=2).query(clip, rate)
    assert (four.phases, two.phases) == (4, 2)
    assert np.array_equal(two.tokens, four.tokens)  # phase 0 is the clip windowed like a file
    with pairalign.Reader(archive.path, phases=2) as reader:
        results = reader.search_audio(clip, rate, top=3)
        assert results["hits"][0]["id"] == str(LONG_WAV)
        assert abs(results["hits"][0]["start_ms"] - 20_000) <= 250
        # The reader's phases are its tokenizer's: the same hits as the 2-phase query.
        by_query = reader.search_query(two, top=3)
        assert [(h["id"], h["start"]) for h in by_query["hits"]] == [
            (h["id"], h["start"]) for h in results["hits"]
        ]
    with pytest.raises(pairalign.InvalidInputError, match="phases=0"):
        pairalign.Reader(archive.path, phases=0)
    with pytest.raises(pairalign.InvalidInputError, match="no grid phases"):
        pairalign.Tokenizer("vq", phases=2)


def test_tokenize_gives_the_indexed_tokens(indexed):
    archive, _ = indexed
    tokens, times = pairalign.tokenize(LONG_WAV)
    assert tokens.dtype == np.uint16 and times.dtype == np.uint32
    assert len(tokens) == len(times) > 300
    assert np.all(np.diff(times.astype(np.int64)) >= 0)
    samples, rate = read_wav(LONG_WAV)
    same, same_times = pairalign.tokenize(samples, rate)
    assert np.array_equal(same, tokens) and np.array_equal(same_times, times)
    # A stretch of the file's own tokens is found exactly where the index holds it.
    results = archive.search_tokens(tokens[100:140], k=0)
    best = results["hits"][0]
    assert (best["id"], best["start"], best["end"], best["distance"]) == (str(LONG_WAV), 100, 140, 0)
    assert best["start_ms"] == times[100]
    assert results["tokenize_ms"] is None
    assert archive.search_tokens(list(map(int, tokens[100:140])))["hits"][0] == best


def test_add_samples_from_numpy_search_and_delete(fresh):
    long, rate = read_wav(LONG_WAV)
    asset = fresh.add_samples(long, rate, "mem-long", title="Morning call", tags=["memory"])
    assert asset["id"] == "mem-long" and asset["path"] is None
    assert asset["tokens"] > 300 and abs(asset["duration_s"] - len(long) / rate) < 0.1
    short, short_rate = read_wav(SHORT_WAV)
    fresh.add_samples(resample(short, short_rate, 44100), 44100, "mem-short", tags=["other"])
    assert fresh.asset("mem-long")["title"] == "Morning call"
    assert fresh.asset("mem-short")["sample_rate"] == 44100

    clip = long[10 * rate : 13 * rate]
    best = fresh.search_audio(clip, rate)["hits"][0]
    assert best["id"] == "mem-long" and abs(best["start_ms"] - 10000) <= 250, best
    filtered = fresh.search_audio(clip, rate, filter="tags:other")["hits"]
    assert all(h["id"] == "mem-short" for h in filtered)

    with pytest.raises(pairalign.ConflictError) as taken:
        fresh.add_samples(long[: 5 * rate], rate, "mem-long")
    assert str(taken.value) == 'the id "mem-long" is taken'
    with pytest.raises(pairalign.ConflictError) as copy:
        fresh.add_samples(long, rate, "mem-copy")
    assert str(copy.value) == 'the same content is already indexed as "mem-long"'

    assert fresh.delete(["mem-long", "nope"]) == {"deleted": ["mem-long"], "missing": ["nope"]}
    assert fresh.asset("mem-long") is None
    assert all(h["id"] != "mem-long" for h in fresh.search_audio(clip, rate)["hits"])
    assert fresh.stats()["docs"] == 1
    fresh.compact()
    assert fresh.stats()["docs"] == 1


def test_bad_input_raises_the_rust_error(indexed, tmp_path):
    archive, _ = indexed
    samples, rate = read_wav(LONG_WAV)
    clip = samples[: 3 * rate]

    with pytest.raises(pairalign.InvalidInputError) as short:
        archive.search_audio(samples[: rate // 10], rate)
    assert str(short.value) == "the clip is 0.10 s long; queries must be 0.5 s to 60 s"
    assert isinstance(short.value, ValueError) and isinstance(short.value, pairalign.Error)

    with pytest.raises(pairalign.InvalidInputError) as k:
        archive.search_audio(clip, rate, k=1.5)
    assert str(k.value) == 'invalid input: k must be a non-negative integer or a fraction in [0, 1), got "1.5"'
    with pytest.raises(pairalign.InvalidInputError) as negative:
        archive.search_audio(clip, rate, k=-1)
    assert str(negative.value) == "invalid input: k must be a non-negative integer or a fraction in [0, 1), got -1"
    with pytest.raises(pairalign.InvalidInputError, match="^invalid input: top must be at least 1"):
        archive.search_audio(clip, rate, top=0)
    with pytest.raises(pairalign.InvalidInputError, match="^bad filter: "):
        archive.search_audio(clip, rate, filter="nosuchfield:3")
    with pytest.raises(pairalign.InvalidInputError) as zero:
        archive.search_audio(clip, 0)
    assert str(zero.value) == "invalid input: a sample rate of 0 Hz"

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are notes, not audio")
    with pytest.raises(pairalign.DecodeError) as undecodable:
        archive.search_file(not_audio)
    assert str(undecodable.value).startswith(f"{not_audio}: ")
    assert isinstance(undecodable.value, pairalign.InvalidInputError)

    missing = tmp_path / "missing.wav"
    with pytest.raises(pairalign.IoError) as io:
        archive.search_file(missing)
    assert str(io.value).startswith(f"{missing}: ")
    assert isinstance(io.value, OSError)

    with pytest.raises(pairalign.InvalidInputError, match="need their rate"):
        pairalign.tokenize(clip)
    with pytest.raises(pairalign.InvalidInputError) as title:
        archive.add_samples(clip, rate, "long-title", title="x" * 100_000)
    assert str(title.value) == "invalid metadata: the title is longer than 1024 bytes"


def test_search_tokens_refuses_another_tokenizers_symbols(indexed):
    archive, _ = indexed
    # Symbol 700 of a tokenizer with a vocabulary of 1,024: this archive's has 512.
    with pytest.raises(pairalign.InvalidInputError) as outside:
        archive.search_tokens([3, 17, 700, 4])
    assert str(outside.value) == "symbol 700 at position 2 is outside the vocabulary (size 512)"
    with pytest.raises(pairalign.InvalidInputError) as huge:
        archive.search_tokens(np.array([70_000, 1]))
    assert str(huge.value) == "invalid input: symbol 70000 at position 0 is outside 0..=65535"


def test_one_writer_and_one_tokenizer_per_archive(tmp_path):
    path = tmp_path / "one.db"
    archive = pairalign.Archive(path)
    archive.add_file(SHORT_WAV)
    with pytest.raises(pairalign.ConflictError, match="locked by another writer"):
        pairalign.Archive(path)
    archive.close()
    with pytest.raises(pairalign.Error) as closed:
        archive.stats()
    assert str(closed.value) == "the archive is closed"
    with pytest.raises(pairalign.TokenizerMismatchError, match="^tokenizer mismatch: "):
        pairalign.Archive(path, tokenizer="vq")
    with pairalign.Archive.open(path) as again:
        assert again.stats()["docs"] == 1
        assert repr(again) == f"Archive({str(path)!r}, tokenizer={pairalign.DEFAULT_TOKENIZER!r})"


def test_searches_run_in_parallel_threads(indexed):
    archive, _ = indexed
    samples, rate = read_wav(LONG_WAV)
    clip = samples[30 * rate : 33 * rate]
    expected = archive.search_audio(clip, rate)["hits"]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: archive.search_audio(clip, rate)["hits"], range(8)))
    assert all(hits == expected for hits in results)


def test_the_gil_is_released_while_adding(tmp_path):
    archive = pairalign.Archive(tmp_path / "gil.db")
    adding = threading.Thread(target=archive.add_file, args=(SAMPLES,))
    started = time.monotonic()
    adding.start()
    # This thread runs Python all along: with the GIL held by the indexer it would stall for
    # the whole call.
    longest_stall, last = 0.0, time.monotonic()
    while adding.is_alive():
        now = time.monotonic()
        longest_stall, last = max(longest_stall, now - last), now
    took = time.monotonic() - started
    assert archive.stats()["docs"] == 20
    assert took > 1.0, "indexing the samples was too quick to tell"
    assert longest_stall < took / 2, (longest_stall, took)
    archive.close()
