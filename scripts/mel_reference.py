#!/usr/bin/env python3
"""Writes datasets/tests/fixtures/mel_reference.json: a deterministic 0.3 s test signal and its
80-bin log-mel, computed with numpy following the definition in datasets/src/mel.rs (and
datasets/README.md), with the filterbank written out from librosa's definitions
(librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, htk=False, norm="slaney")).

If librosa is installed, the filterbank is also checked against it.

Usage: python3 scripts/mel_reference.py   (from the repository root; needs numpy)
"""
import json
import pathlib

import numpy as np

SR, N_FFT, WIN, HOP, N_MELS, FLOOR = 16000, 512, 400, 160, 80, 1e-10


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters():
    fftfreqs = np.linspace(0, SR / 2, 1 + N_FFT // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((N_MELS, 1 + N_FFT // 2))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    return weights


def log_mel(x):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann
    n_frames = 0 if len(x) < WIN else 1 + (len(x) - WIN) // HOP
    frames = np.stack([x[t * HOP : t * HOP + WIN] for t in range(n_frames)]).astype(np.float64)
    spec = np.fft.rfft(frames * window, n=N_FFT, axis=1)
    power = np.abs(spec) ** 2
    return np.log(np.maximum(power @ mel_filters().T, FLOOR))


def test_signal():
    """0.3 s: two chirping partials, a 1 kHz tone, deterministic noise, a silent gap."""
    n = int(0.3 * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(20260425)
    x = 0.3 * np.sin(2 * np.pi * (200 * t + 400 * t**2)) + 0.2 * np.sin(2 * np.pi * 1000 * t)
    x += 0.1 * np.sin(2 * np.pi * (3000 * t - 2000 * t**2)) + 0.02 * rng.standard_normal(n)
    x[2400:2800] = 0.0
    return x.astype(np.float32)


def main():
    try:
        import librosa

        ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS)
        assert np.allclose(ref, mel_filters(), atol=1e-6), "filterbank differs from librosa"
        print("filterbank matches librosa", librosa.__version__)
    except ImportError:
        librosa = None
        print("librosa not installed: filterbank written from its definitions only")
    x = test_signal()
    mel = log_mel(x.astype(np.float64))
    if librosa is not None:
        # librosa frames are n_fft = 512 long with the 400-sample window centered in them: pad 56
        # zeros on each side so that its frames hold exactly our 400-sample frames.
        pad = (N_FFT - WIN) // 2
        power = librosa.feature.melspectrogram(
            y=np.pad(x.astype(np.float64), (pad, pad)), sr=SR, n_fft=N_FFT, win_length=WIN,
            hop_length=HOP, center=False, power=2.0, n_mels=N_MELS)
        diff = np.abs(np.log(np.maximum(power, FLOOR)).T[: mel.shape[0]] - mel).max()
        assert diff < 1e-5, f"differs from librosa.feature.melspectrogram by {diff}"
        print(f"log-mel matches librosa.feature.melspectrogram (max diff {diff:.1e})")
    out = {
        "description": "scripts/mel_reference.py: 0.3 s test signal (16 kHz, f32) and its log-mel "
        "(frames x 80, row-major, natural log, floor 1e-10)",
        "sample_rate": SR,
        "n_mels": N_MELS,
        "frames": int(mel.shape[0]),
        "signal": [float(v) for v in x],
        "log_mel": [round(float(v), 6) for v in mel.ravel()],
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "datasets/tests/fixtures/mel_reference.json"
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes, {mel.shape[0]} frames)")


if __name__ == "__main__":
    main()
