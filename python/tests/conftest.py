"""Fixtures of the Python package's tests: the bundled sample audio (samples/ at the
repository's root), read with the standard library, and archives in temporary folders."""

import wave
from pathlib import Path

import numpy as np
import pytest

import pairalign

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# 45.8 s of espeak-ng en-us+m3, 16 kHz mono 16-bit PCM: read here without pairalign's decoder.
LONG_WAV = SAMPLES / "long" / "long_espeak-ng_en-us_m3.wav"
SHORT_WAV = SAMPLES / "short" / "flite_kal.wav"


def read_wav(path):
    """The samples of a 16-bit PCM mono WAV file as float32 in [-1, 1], and its rate."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        frames = w.readframes(w.getnframes())
        rate = w.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, rate


def write_wav(path, samples, rate):
    """Writes float samples in [-1, 1] as a 16-bit PCM mono WAV file."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def resample(samples, rate, to):
    """Linear interpolation to another rate: enough to hand the archive audio at any rate."""
    n = int(round(len(samples) * to / rate))
    return np.interp(np.arange(n) * rate / to, np.arange(len(samples)), samples).astype(np.float32)


@pytest.fixture(scope="session")
def indexed(tmp_path_factory):
    """The samples indexed into one archive shared by the tests that only search it, and the
    index report."""
    archive = pairalign.Archive.open(tmp_path_factory.mktemp("samples") / "samples.db")
    report = archive.add_file(SAMPLES, tags=["sample"])
    yield archive, report
    archive.close()


@pytest.fixture
def fresh(tmp_path):
    """An empty archive of its own, for the tests that change it."""
    with pairalign.Archive(tmp_path / "fresh.db") as archive:
        yield archive
