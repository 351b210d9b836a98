"""Audio conversions shared by every family (all models here want 16 kHz mono)."""
from __future__ import annotations

import subprocess

import numpy as np

from .errors import MediaError
from .media import ffmpeg_exe


def to_mono(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float32)
    return wav.mean(axis=0) if wav.ndim == 2 else wav


def resample(wav: np.ndarray, rate_in: int, rate_out: int = 16000, mono: bool = True) -> np.ndarray:
    """(C,T) or (T,) float32 at ``rate_in`` -> (T',) mono (or (C,T')) float32 at ``rate_out``.

    Uses ffmpeg's resampler (libswresample: windowed sinc, the same as decoding a file at
    the target rate), so features from an AUDIO input match features from a file path.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2 or wav.shape[1] == 0:
        raise MediaError("The audio is empty (zero samples); connect audio with speech in it.")
    if mono and wav.shape[0] > 1:
        wav = wav.mean(axis=0, keepdims=True)
    if int(rate_in) == int(rate_out):
        return wav[0].copy() if mono else wav.copy()
    channels = wav.shape[0]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar", str(int(rate_in)),
           "-ac", str(channels), "-i", "-", "-f", "f32le", "-ar", str(int(rate_out)), "-ac", str(channels), "-"]
    proc = subprocess.run(cmd, input=np.ascontiguousarray(wav.T).tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise MediaError(f"Resampling audio failed: {proc.stderr.decode('utf-8', 'replace')[-400:]}")
    out = np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, channels).T
    return out[0].copy() if mono else out.copy()


def fit_length(wav: np.ndarray, samples: int) -> np.ndarray:
    """Cut or zero-pad (C,T) audio to ``samples`` samples."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.shape[-1] >= samples:
        return wav[..., :samples]
    pad = [(0, 0)] * (wav.ndim - 1) + [(0, samples - wav.shape[-1])]
    return np.pad(wav, pad)
