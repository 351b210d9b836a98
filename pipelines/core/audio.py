"""Audio shared by every family: any rate / channel layout -> 16 kHz mono float32.

A windowed-sinc polyphase resampler in PyTorch (torchaudio is not a dependency):
Kaiser-windowed ideal low-pass, cutoff at ``rolloff`` x the lower Nyquist, evaluated
at every output instant and applied as one strided conv1d per output phase. Not
bit-identical to librosa/soxr (which the reference used), but accurate to ~1e-4 in the
passband. Used by Ditto (HuBERT, also streaming), MuseTalk (whisper) and the video writer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .errors import MediaError


def _sinc_kernels(orig: int, new: int, zero_crossings: int, rolloff: float, beta: float):
    """(new, 1, K) float64 kernels, one per output phase, plus the left padding."""
    fc = 0.5 * min(1.0, new / orig) * rolloff            # cycles per input sample
    width = zero_crossings / (2 * fc)                     # half support, input samples
    pad = int(math.ceil(width))
    k = torch.arange(-pad, pad + orig, dtype=torch.float64)
    phase = torch.arange(new, dtype=torch.float64)[:, None] * orig / new
    tau = k[None, :] - phase                              # tap offset from the output instant
    x = 2 * fc * tau
    sinc = torch.where(x == 0, torch.ones_like(x), torch.sin(math.pi * x) / (math.pi * x))
    inside = (tau.abs() <= width)
    arg = torch.clamp(1 - (tau / width) ** 2, min=0).sqrt()
    window = torch.special.i0(beta * arg) / torch.special.i0(torch.tensor(beta, dtype=torch.float64))
    kern = 2 * fc * sinc * window * inside
    return kern[:, None, :], pad


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int, zero_crossings: int = 32,
             rolloff: float = 0.945, beta: float = 14.769656459379492) -> torch.Tensor:
    """Resample the last axis of ``wave`` from ``orig_sr`` to ``new_sr``.

    Output length ``ceil(T * new / orig)``; output sample n sits exactly at input time
    ``n * orig / new`` (no delay). Runs on ``wave``'s device and dtype (float).
    """
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr <= 0 or new_sr <= 0:
        raise MediaError(f"sample rates must be positive (got {orig_sr} -> {new_sr})")
    if orig_sr == new_sr:
        return wave
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    kern, pad = _sinc_kernels(orig, new, zero_crossings, rolloff, beta)
    shape = wave.shape
    x = wave.reshape(-1, 1, shape[-1])
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    x = F.pad(x.to(dtype), (pad, pad + orig))
    y = F.conv1d(x, kern.to(x.device, dtype), stride=orig)          # (B, new, Q)
    n_out = -(-shape[-1] * new // orig)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)[:, :n_out]
    return y.reshape(shape[:-1] + (n_out,))


class StreamResampler:
    """:func:`resample` for audio arriving in pieces: ``push(x)`` returns the output samples
    that are complete, ``finish()`` the rest; the concatenation equals ``resample`` of the
    whole signal (up to float rounding). 1-D float signals."""

    def __init__(self, orig_sr: int, new_sr: int, **kw):
        g = math.gcd(int(orig_sr), int(new_sr))
        self.orig, self.new = int(orig_sr) // g, int(new_sr) // g
        self.identity = self.orig == self.new
        kern, self.pad = _sinc_kernels(self.orig, self.new, kw.get("zero_crossings", 32),
                                       kw.get("rolloff", 0.945), kw.get("beta", 14.769656459379492))
        self.kern = kern.float()
        self.buf = torch.zeros(self.pad)    # input from (next block) * orig - pad on
        self.block = 0                      # next output block (of ``new`` samples)
        self.total_in = 0

    def _blocks(self, count: int) -> torch.Tensor:
        need = (count - 1) * self.orig + self.kern.shape[-1]
        x = self.buf[:need]
        if len(x) < need:
            x = F.pad(x, (0, need - len(x)))
        y = F.conv1d(x[None, None], self.kern, stride=self.orig)[0]      # (new, count)
        self.buf = self.buf[count * self.orig:]
        self.block += count
        return y.transpose(0, 1).reshape(-1)

    def push(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        if self.identity:
            return x
        self.total_in += len(x)
        self.buf = torch.cat([self.buf, x])
        # block q reads input up to q*orig + pad + orig (exclusive)
        ready = (len(self.buf) - self.kern.shape[-1]) // self.orig + 1
        return self._blocks(ready) if ready > 0 else torch.zeros(0)

    def finish(self) -> torch.Tensor:
        if self.identity:
            return torch.zeros(0)
        n_out = -(-self.total_in * self.new // self.orig)
        left = n_out - self.block * self.new
        if left <= 0:
            return torch.zeros(0)
        return self._blocks(-(-left // self.new))[:left]


def to_mono(waveform) -> torch.Tensor:
    """(T,), (C,T) or ComfyUI's (B,C,T) (first item) -> (T,) float32 channel mean."""
    w = torch.as_tensor(waveform)
    if w.ndim == 3:
        w = w[0]
    if w.ndim == 2:
        w = w.float().mean(dim=0)
    if w.ndim != 1:
        raise MediaError(f"audio must be (T,), (C,T) or (B,C,T); got shape {tuple(w.shape)}")
    return w.float()


def prepare_audio(waveform, sample_rate: int, target_sr: int = 16000) -> np.ndarray:
    """Any waveform -> (T,) float32 numpy at ``target_sr`` mono, checked for usability."""
    w = to_mono(waveform)
    if w.numel() == 0:
        raise MediaError("the audio is empty; connect audio with at least one sample of speech")
    if not torch.isfinite(w).all():
        raise MediaError("the audio contains NaN or infinite samples; re-export it")
    w = resample(w.cpu(), int(sample_rate), target_sr)
    return w.float().numpy()


def fit_length(wav, samples: int) -> np.ndarray:
    """Cut or zero-pad (C,T) or (T,) audio to ``samples`` samples."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.shape[-1] >= samples:
        return wav[..., :samples]
    pad = [(0, 0)] * (wav.ndim - 1) + [(0, samples - wav.shape[-1])]
    return np.pad(wav, pad)
