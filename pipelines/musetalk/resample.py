"""A small band-limited resampler (MuseTalk's encoder needs 16 kHz mono).

The reference resamples with librosa (soxr); the pack has no such dependency, so this is
a polyphase windowed-sinc resampler written for the job: for rates ``a -> b`` reduced by
their gcd, output sample ``j`` lies at input position ``j * a / b``; each of the ``b``
output phases has its own Hann-windowed sinc kernel (cutoff ``rolloff * min(1, b/a)``
of the input Nyquist, ``zero_crossings`` lobes), applied as one strided conv1d.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _kernels(a: int, b: int, zero_crossings: int, rolloff: float) -> tuple:
    fc = rolloff * min(1.0, b / a)          # cutoff as a fraction of the input Nyquist
    half = math.ceil(zero_crossings / fc)    # kernel half-width in input samples
    i = torch.arange(-half, half + a, dtype=torch.float64)[None, :]
    phase = (torch.arange(b, dtype=torch.float64) * a / b)[:, None]
    x = i - phase
    window = torch.where(x.abs() <= half, torch.cos(math.pi * x / (2 * half)) ** 2,
                         torch.zeros_like(x))
    return fc * torch.sinc(fc * x) * window, half


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int = 16000, zero_crossings: int = 16,
             rolloff: float = 0.95) -> torch.Tensor:
    """Resample the last dimension of ``wave`` from ``orig_sr`` to ``new_sr`` (float32)."""
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if orig_sr == new_sr:
        return wave.clone()
    g = math.gcd(orig_sr, new_sr)
    a, b = orig_sr // g, new_sr // g
    kernel, half = _kernels(a, b, zero_crossings, rolloff)
    lead = wave.shape[:-1]
    x = wave.reshape(-1, 1, wave.shape[-1]).double()
    n_out = math.ceil(wave.shape[-1] * b / a)
    blocks = math.ceil(n_out / b)
    x = F.pad(x, (half, half + a + blocks * a - wave.shape[-1]))
    y = F.conv1d(x, kernel[:, None, :], stride=a)[..., :blocks]   # (C, b, blocks)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)[:, :n_out]
    return y.float().reshape(lead + (n_out,))
