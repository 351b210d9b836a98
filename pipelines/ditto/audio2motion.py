"""Audio features -> per-frame 265-d motion: windows, cross-fade, smoothing, clipping
(spec ditto.md §3.6.4, §4.2; goldens ``audio2motion_offline`` / ``audio2motion_online``).

The LMDM generates 80-frame windows. Consecutive windows overlap: the new window's
first ``F`` frames are linearly cross-faded into the previous result
(weights 0, 1/F, .., (F-1)/F), pose dims are smoothed around the seam, and the next
window is conditioned on one frame of the result (``kp_cond``).

Offline: windows advance by ``V = 80 - overlap``; at the end the whole sequence is
smoothed once more (the reference smooths twice; kept, the goldens include it).
Online (streaming): the feature buffer starts with ``overlap`` frames of HuBERT-of-silence,
a window runs whenever ``V`` new features arrived, the first window only supplies the
relative-motion anchor ``d0``, and each later window emits ``V`` frames that lag its end by
``F``. Frame k therefore needs audio up to about frame k + V + F (+2 HuBERT look-ahead
frames): 880 ms at overlap 70, the reference's latency.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

from ..core.errors import ShapeError
from .motion_layout import POSE_END


def smooth_pose(res: np.ndarray, start: int, end: int, k: int) -> None:
    """Centred moving average (window k, truncated at the ends) of dims [0, 202) of rows
    [start, end), reading from a snapshot and writing in place. exp is never smoothed."""
    n = len(res)
    start, end = max(int(start), 0), min(int(end), n)
    if k <= 1 or end <= start:
        return
    half = k // 2
    snap = res[:, :POSE_END].copy()
    rows = np.arange(start, end)
    acc = np.zeros((end - start, POSE_END), dtype=res.dtype)
    count = np.zeros((end - start, 1), dtype=res.dtype)
    # summing the window rows in index order reproduces the reference's float32 mean
    for off in range(-half, half + 1):
        src = rows + off
        ok = (src >= 0) & (src < n)
        acc[ok] += snap[src[ok]]
        count[ok] += 1
    res[start:end, :POSE_END] = acc / count


class WindowFuser:
    """Accumulates LMDM windows into one motion sequence and tracks ``kp_cond``."""

    def __init__(self, s_kp_cond: np.ndarray, seq_len: int = 80, overlap: int = 10,
                 online: bool = False, smooth_k: int = 3, fix_kp_cond: int = 0,
                 fix_kp_cond_dim: Optional[tuple] = None):
        if not 0 <= overlap < seq_len:
            raise ShapeError(f"overlap must be in [0, {seq_len}), got {overlap}")
        self.seq_len = int(seq_len)
        self.overlap = int(overlap)
        self.valid = self.seq_len - self.overlap                   # V
        self.fuse = min(self.overlap, self.valid) if online else self.overlap   # F
        self.alpha = (np.arange(self.fuse, dtype=np.float32) / self.fuse).reshape(-1, 1) \
            if self.fuse else np.zeros((0, 1), np.float32)
        self.smooth_k = int(smooth_k)
        self.s_kp_cond = np.asarray(s_kp_cond, dtype=np.float32).reshape(-1)
        self.fix_kp_cond = int(fix_kp_cond or 0)
        self.fix_dims = tuple(fix_kp_cond_dim) if fix_kp_cond_dim is not None \
            else (0, len(self.s_kp_cond))
        self.kp_cond = self.s_kp_cond.copy()
        self.res: Optional[np.ndarray] = None
        self.windows = 0
        self.trimmed = 0          # rows dropped from the front (online memory bound)

    def add(self, pred: np.ndarray) -> None:
        pred = np.asarray(pred, dtype=np.float32).reshape(self.seq_len, -1)
        L, V, F = self.seq_len, self.valid, self.fuse
        if self.res is None:
            self.res = pred.copy()
            smooth_pose(self.res, 0, L, self.smooth_k)
        else:
            res = self.res
            n = len(res)
            if F:
                res[n - F:] = res[n - F:] * (1 - self.alpha) + pred[L - V - F:L - V] * self.alpha
            self.res = res = np.concatenate([res, pred[L - V:]], axis=0)
            n = len(res)
            smooth_pose(res, n - V - F, n - V + 1, self.smooth_k)
        self.windows += 1
        last = self.res[len(self.res) - self.overlap - 1]   # frame before the next window
        if self.fix_kp_cond > 0 and self.windows % self.fix_kp_cond == 0:
            # carry pose/t from the result, reset the rest (exp) to the source's
            kp = self.s_kp_cond.copy()
            a, b = self.fix_dims
            kp[a:b] = last[a:b]
            self.kp_cond = kp
        else:
            self.kp_cond = last.copy()

    def trim(self, keep: int) -> int:
        """Drop all but the last ``keep`` rows; returns how many were dropped."""
        cut = max(len(self.res) - keep, 0) if self.res is not None else 0
        if cut:
            self.res = self.res[cut:]
            self.trimmed += cut
        return cut


def clip_motion(rows: np.ndarray, clip_min_max: Optional[tuple]) -> np.ndarray:
    if clip_min_max is None:
        return rows
    lo, hi = clip_min_max
    return np.clip(rows, lo, hi).astype(np.float32)


WindowHook = Optional[Callable[[int, np.ndarray, np.ndarray], None]]


def _pad_rows(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) >= n:
        return a
    return np.concatenate([a, np.repeat(a[-1:], n - len(a), axis=0)], axis=0)


def audio2motion_offline(sample: Callable, handler, feats: np.ndarray, fuser: WindowFuser,
                         on_window: WindowHook = None,
                         progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """All frames at once. ``sample(kp_cond (265,), cond (L,C)) -> (L,265)`` runs the
    sampler (and checks for a stop between its steps); ``on_window(w, kp_cond, pred)``
    observes each window (tests). Returns the unclipped (N,265) motion."""
    cond_all = handler(feats, 0)
    n = len(cond_all)
    L, V = fuser.seq_len, fuser.valid
    total = max(1, -(-n // V))
    i = w = 0
    while i < n:
        cond = _pad_rows(cond_all[i:i + L], L)     # the last window repeats its last row
        kp_cond = fuser.kp_cond.copy()
        pred = np.asarray(sample(kp_cond, cond), dtype=np.float32)
        if on_window is not None:
            on_window(w, kp_cond, pred)
        fuser.add(pred)
        i += V
        w += 1
        if progress is not None:
            progress(w, total)
    res = fuser.res[:n].copy()
    smooth_pose(res, 0, n, fuser.smooth_k)
    return res


class OnlineAudio2Motion:
    """Streaming audio2motion: ``push(features)`` returns the motion rows that became final
    (clipped, (k,265)); ``finish()`` flushes the tail. ``d0`` (the warm-up frame) is set
    after the first window and anchors relative motion."""

    def __init__(self, sample: Callable, handler, fuser: WindowFuser, silence: np.ndarray,
                 clip_min_max: Optional[tuple] = None, on_window: WindowHook = None):
        self.sample, self.handler, self.fuser = sample, handler, fuser
        self.clip = clip_min_max
        self.on_window = on_window
        self.audio = np.asarray(silence, dtype=np.float32).reshape(-1, silence.shape[-1])
        self.cond_idx_start = -len(self.audio)
        self.pending: List[np.ndarray] = []
        self.local_idx = 0
        self.global_idx = 0
        self.valid_start: Optional[int] = None
        self.d0: Optional[np.ndarray] = None
        self.emitted = 0
        self.unclipped: List[np.ndarray] = []   # kept only when ``keep_unclipped``
        self.keep_unclipped = False
        self.windows = 0

    def push(self, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, dtype=np.float32).reshape(-1, self.audio.shape[1])
        self.pending.append(feats)
        if sum(len(p) for p in self.pending) < self.fuser.valid:
            return self._empty()
        return self._run(is_end=False)

    def finish(self) -> np.ndarray:
        return self._run(is_end=True)

    def _empty(self):
        return np.zeros((0, self.fuser.s_kp_cond.shape[0]), np.float32)

    def _emit(self, rows: np.ndarray, out: list):
        if self.keep_unclipped:
            self.unclipped.append(rows.copy())
        out.append(clip_motion(rows, self.clip))
        self.emitted += len(rows)

    def _run(self, is_end: bool) -> np.ndarray:
        if self.pending:
            self.audio = np.concatenate([self.audio] + self.pending, axis=0)
            self.pending = []
        fuser, L, V = self.fuser, self.fuser.seq_len, self.fuser.valid
        out: list = []
        while True:
            aud = self.audio[self.local_idx:self.local_idx + L]
            valid_len, padded = V, len(aud) < L
            if len(aud) == 0 or (padded and not is_end):
                break
            if padded:                        # final short window: repeat the last feature
                valid_len = len(aud)
                aud = _pad_rows(aud, L)
            cond = self.handler(aud, self.global_idx + self.cond_idx_start)
            kp_cond = fuser.kp_cond.copy()
            pred = np.asarray(self.sample(kp_cond, cond), dtype=np.float32)
            if self.on_window is not None:
                self.on_window(self.windows, kp_cond, pred)
            self.windows += 1
            fuser.add(pred)
            if self.valid_start is None:      # first window: warm-up, only the anchor
                self.valid_start = len(fuser.res) - fuser.fuse
                self.d0 = clip_motion(fuser.res[0:1], self.clip)[0]
                if padded:  # the whole input fit in one window (the reference emits nothing)
                    self._emit(fuser.res[self.valid_start:], out)
                    self.valid_start = len(fuser.res)
            else:
                self._emit(fuser.res[self.valid_start:self.valid_start + valid_len], out)
                self.valid_start += valid_len
            self.local_idx += valid_len
            self.global_idx += valid_len
            self.valid_start -= fuser.trim(2 * L)
            if self.local_idx >= len(self.audio):
                break
        cut = max(len(self.audio) - 2 * L, 0)
        if cut:
            self.audio = self.audio[cut:]
            self.local_idx -= cut
        return np.concatenate(out, axis=0) if out else self._empty()
