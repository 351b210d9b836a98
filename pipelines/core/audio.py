"""Audio shared by every family: any rate / channel layout -> 16 kHz mono float32.

A windowed-sinc resampler in PyTorch (torchaudio is not a dependency): Kaiser-windowed
ideal low-pass, cutoff at ``rolloff`` x the lower Nyquist, evaluated at every output
instant. Not bit-identical to librosa/soxr (which the reference used), but accurate to
~1e-4 in the passband. Used by Ditto (HuBERT, also streaming), MuseTalk (whisper) and the
video writer.

Memory and time are bounded for any pair of rates. Output n sits at input time
``n * orig / new``; it reads only the ``2 * pad + 1`` inputs around that instant (a
gather, in blocks of outputs), weighted by the kernel at the instant's fractional
position. Those weights come from a table with one row per fractional position:

- exact: a row per output phase (``new / gcd`` of them) while that table is small; this
  covers the common rates (44.1k, 22.05k, 48k, 8k ... to 16k or 48k);
- interpolated: otherwise (7919 Hz or 22254 Hz have thousands of co-prime phases; a
  kernel per phase spanning a whole period once took 4.6-12.6 GB) rows every 1/1024 input
  sample, read with linear interpolation between rows: ~1e-7 error, below float32 noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .errors import MediaError

ZERO_CROSSINGS = 32
ROLLOFF = 0.945
BETA = 14.769656459379492
# one exact table row per output phase while (phases x taps) stays below this
MAX_EXACT_TABLE = 2 ** 18
# otherwise rows every 1/FINE_PHASES input sample, read with linear interpolation: tap
# error <= |h''| / (8 FINE_PHASES^2) ~ 1e-7, far below the 1e-4 passband target
FINE_PHASES = 1024
BLOCK_ELEMENTS = 2 ** 17          # gathered inputs per block: cache-sized and fastest


def _kernel(tau: torch.Tensor, fc: float, width: float, beta: float) -> torch.Tensor:
    """The Kaiser-windowed sinc at ``tau`` input samples from the output instant."""
    x = 2 * fc * tau
    sinc = torch.where(x == 0, torch.ones_like(x), torch.sin(math.pi * x) / (math.pi * x))
    arg = torch.clamp(1 - (tau / width) ** 2, min=0).sqrt()
    window = torch.special.i0(beta * arg) / torch.special.i0(torch.tensor(beta, dtype=tau.dtype))
    return 2 * fc * sinc * window * (tau.abs() <= width)


@dataclass
class _Plan:
    """One rate pair: the reduced ratio, the taps per output and the weight table.

    Output n sits at input ``base + frac`` with ``base = n*orig // new`` and ``frac =
    rem / new``, ``rem = n*orig % new``. It reads inputs ``base - pad .. base + pad``
    with the kernel at ``tau = tap - frac``; ``table`` row r holds those weights for
    ``frac = r / rows`` (rows + 1 rows: the last is frac = 1 for interpolation).
    """

    orig: int                 # orig_sr / gcd
    new: int                  # new_sr / gcd: the number of distinct output phases
    pad: int
    rows: int                 # == new: exact; FINE_PHASES: interpolated
    table: torch.Tensor       # (rows + 1, taps) float64
    cast: dict = field(default_factory=dict)   # (dtype, device) -> (table, row steps)

    @property
    def taps(self) -> int:
        return 2 * self.pad + 1

    @property
    def exact(self) -> bool:
        return self.rows == self.new

    @classmethod
    def make(cls, orig_sr: int, new_sr: int, zero_crossings: int = ZERO_CROSSINGS,
             rolloff: float = ROLLOFF, beta: float = BETA) -> "_Plan":
        g = math.gcd(orig_sr, new_sr)
        orig, new = orig_sr // g, new_sr // g
        fc = 0.5 * min(1.0, new / orig) * rolloff            # cycles per input sample
        width = zero_crossings / (2 * fc)                     # half support, input samples
        pad = int(math.ceil(width))
        rows = new if new * (2 * pad + 1) <= MAX_EXACT_TABLE else FINE_PHASES
        taps = torch.arange(-pad, pad + 1, dtype=torch.float64)
        frac = torch.arange(rows + 1, dtype=torch.float64) / rows
        table = _kernel(taps[None, :] - frac[:, None], fc, width, beta)
        return cls(orig, new, pad, rows, table)

    def tables(self, like: torch.Tensor):
        """The table and its row differences in ``like``'s dtype and device, made once
        (a stream pushes many small pieces)."""
        key = (like.dtype, like.device)
        if key not in self.cast:
            table = self.table.to(like.device, like.dtype)
            self.cast[key] = (table, table[1:] - table[:-1])
        return self.cast[key]

    def base(self, n: torch.Tensor) -> torch.Tensor:
        """Input index at or before output n's instant (exact integer arithmetic)."""
        return n * self.orig // self.new

    def weights(self, n: torch.Tensor, table: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """(N, taps) weights of outputs ``n`` (int64); ``table``/``step`` are the table and
        its row differences in the signal's dtype."""
        rem = n * self.orig % self.new
        if self.exact:
            return table[rem]
        pos = rem * self.rows                  # frac * rows = pos / new
        row = pos // self.new
        a = ((pos % self.new).to(table.dtype) / self.new)[:, None]
        return torch.addcmul(table[row], step[row], a)


def _apply(plan: _Plan, padded: torch.Tensor, start: int, n0: int, n1: int) -> torch.Tensor:
    """Outputs n0..n1-1 from ``padded`` (B, L): input padded with ``pad`` zeros in front,
    whose column 0 is padded index ``start``. Works in blocks of outputs so memory stays
    at about BLOCK_ELEMENTS gathered samples whatever the rates and length."""
    batch = padded.shape[0]
    out = torch.empty(batch, max(n1 - n0, 0), dtype=padded.dtype, device=padded.device)
    if n1 <= n0:
        return out
    table, step = plan.tables(padded)
    windows = padded.unfold(-1, plan.taps, 1)     # (B, L - taps + 1, taps), a view
    size = max(1, BLOCK_ELEMENTS // (batch * plan.taps))
    for s in range(n0, n1, size):
        n = torch.arange(s, min(s + size, n1), dtype=torch.int64, device=padded.device)
        x = windows[:, plan.base(n) - start]                     # (B, N, taps)
        out[:, s - n0:s - n0 + len(n)] = torch.einsum("bnk,nk->bn", x, plan.weights(n, table, step))
    return out


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int, zero_crossings: int = ZERO_CROSSINGS,
             rolloff: float = ROLLOFF, beta: float = BETA) -> torch.Tensor:
    """Resample the last axis of ``wave`` from ``orig_sr`` to ``new_sr``.

    Output length ``ceil(T * new / orig)``; output sample n sits exactly at input time
    ``n * orig / new`` (no delay). Runs on ``wave``'s device and dtype (float).
    """
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr <= 0 or new_sr <= 0:
        raise MediaError(f"sample rates must be positive (got {orig_sr} -> {new_sr})")
    if orig_sr == new_sr:
        return wave
    plan = _Plan.make(orig_sr, new_sr, zero_crossings, rolloff, beta)
    shape = wave.shape
    x = wave.reshape(-1, shape[-1])
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    # the last output's taps reach pad samples past its instant, which is < T
    x = F.pad(x.to(dtype), (plan.pad, plan.pad))
    n_out = -(-shape[-1] * plan.new // plan.orig)
    return _apply(plan, x, 0, 0, n_out).reshape(shape[:-1] + (n_out,))


class StreamResampler:
    """:func:`resample` for audio arriving in pieces: ``push(x)`` returns the output samples
    that are complete, ``finish()`` the rest; the concatenation equals ``resample`` of the
    whole signal (up to float rounding). 1-D float signals."""

    def __init__(self, orig_sr: int, new_sr: int, **kw):
        orig_sr, new_sr = int(orig_sr), int(new_sr)
        if orig_sr <= 0 or new_sr <= 0:
            raise MediaError(f"sample rates must be positive (got {orig_sr} -> {new_sr})")
        self.identity = orig_sr == new_sr
        self.plan = _Plan.make(orig_sr, new_sr, **kw)
        self.buf = torch.zeros(self.plan.pad)   # padded input from padded index ``start``
        self.start = 0
        self.done = 0                           # outputs returned so far
        self.total_in = 0

    def _emit(self, count: int) -> torch.Tensor:
        """Outputs done..count-1, then drop the input no later output reads."""
        y = _apply(self.plan, self.buf[None], self.start, self.done, count)[0]
        self.done = max(self.done, count)
        keep_from = int(self.plan.base(torch.tensor(self.done))) - self.start
        self.buf = self.buf[max(keep_from, 0):]
        self.start += max(keep_from, 0)
        return y

    def push(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
        if self.identity:
            return x
        self.total_in += len(x)
        self.buf = torch.cat([self.buf, x])
        # output n is complete once its last tap, padded index base(n) + 2 pad, arrived
        last_base = self.start + len(self.buf) - self.plan.taps
        if last_base < 0:
            return torch.zeros(0)
        ready = -(-(last_base + 1) * self.plan.new // self.plan.orig)
        return self._emit(ready)

    def finish(self) -> torch.Tensor:
        if self.identity:
            return torch.zeros(0)
        n_out = -(-self.total_in * self.plan.new // self.plan.orig)
        if n_out <= self.done:
            return torch.zeros(0)
        self.buf = F.pad(self.buf, (0, self.plan.pad + 1))   # zeros after the end
        return self._emit(n_out)


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
