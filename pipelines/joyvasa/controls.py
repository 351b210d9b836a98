"""What a user can change about generated motion: smoothing, the animated region, a
multiplier on the generated changes, and blinks (see settings.py for the meaning of each).

Everything here works on the dict of per-frame parts ``{exp (T,21,3), scale (T,1),
t (T,3), pitch/yaw/roll (T,1)}`` that :func:`template.denormalize` returns.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..liveportrait.keypoints import EYE_KP, LIP_KP

POSE_PARTS = ("scale", "t", "pitch", "yaw", "roll")

# a full close of the eyes as expression offsets (keypoint, axis, value): the upper-lid
# keypoints 11/15 move down (+y), the lower-lid keypoints 13/16 up. These are the
# AdvancedLivePortrait expression editor's blink coefficients at its "closed" end (-20).
EYE_CLOSED = ((11, 1, 0.02), (13, 1, -0.006), (15, 1, 0.02), (16, 1, -0.006))
BLINK_CLOSE_S = 0.10
BLINK_OPEN_S = 0.20


def ema(values: np.ndarray, strength: float) -> np.ndarray:
    """Causal exponential smoothing along axis 0 in float32: s_0 = v_0,
    s_i = (1 − k)·v_i + k·s_{i−1} (the reference's filter with k = 0.99)."""
    values = np.asarray(values, dtype=np.float32)
    if strength <= 0 or len(values) == 0:
        return values.copy()
    alpha = round(1.0 - float(strength), 12)   # 0.99 -> exactly the reference's 0.01
    out = np.empty_like(values)
    s = values[0]
    out[0] = s
    for i in range(1, len(values)):
        s = alpha * values[i] + (1 - alpha) * s
        out[i] = s
    return out.astype(np.float32)


def ema_zero_phase(values: np.ndarray, strength: float) -> np.ndarray:
    """:func:`ema` forwards, then backwards over the result: smoothing without delay."""
    if strength <= 0:
        return np.asarray(values, dtype=np.float32).copy()
    return ema(ema(values, strength)[::-1], strength)[::-1].copy()


def smooth_parts(parts: dict, pose_strength: float, exp_strength: float = 0.0) -> dict:
    """The reference's pose smoothing (EMA on [scale, t, pitch, yaw, roll]) plus optional
    zero-phase expression smoothing. Returns new tensors."""
    out = dict(parts)
    if pose_strength > 0:
        cols = [parts[k].reshape(len(parts[k]), -1).numpy() for k in POSE_PARTS]
        sizes = [c.shape[1] for c in cols]
        smooth = ema(np.concatenate(cols, axis=1), pose_strength)
        start = 0
        for key, size in zip(POSE_PARTS, sizes):
            out[key] = torch.from_numpy(smooth[:, start:start + size].copy()).reshape(parts[key].shape)
            start += size
    if exp_strength > 0:
        exp = parts["exp"]
        flat = ema_zero_phase(exp.reshape(len(exp), -1).numpy(), exp_strength)
        out["exp"] = torch.from_numpy(flat).reshape(exp.shape)
    return out


def _rows_mask(rows) -> torch.Tensor:
    m = torch.zeros(21, 1, dtype=torch.bool)
    m[list(rows)] = True
    return m


def restrict_region(parts: dict, region: str) -> dict:
    """Hold what ``region`` does not animate at its first-frame value."""
    if region == "all":
        return dict(parts)
    out = dict(parts)
    if region != "pose":
        for key in POSE_PARTS:
            out[key] = parts[key][:1].expand_as(parts[key]).clone()
    exp, first = parts["exp"], parts["exp"][:1]
    if region == "pose":
        out["exp"] = first.expand_as(exp).clone()
    elif region in ("lips", "eyes"):
        mask = _rows_mask(LIP_KP if region == "lips" else EYE_KP)
        out["exp"] = torch.where(mask, exp, first)
    return out


def scale_changes(parts: dict, multiplier: float) -> dict:
    """v_i -> v_0 + m·(v_i − v_0) for every part (the relative driving reference is frame 0)."""
    if multiplier == 1.0:
        return dict(parts)
    return {k: v[:1] + (v - v[:1]) * float(multiplier) for k, v in parts.items()}


def blink_starts(duration_s: float, seed: int, gap_s=(2.0, 5.0),
                 length_s: float = BLINK_CLOSE_S + BLINK_OPEN_S) -> list:
    """Start times (s) of blinks in a clip of ``duration_s``: a seeded gap, a blink, a gap...
    Every blink ends inside the clip."""
    gen = torch.Generator().manual_seed(int(seed) + 1)   # not the sampler's stream
    lo, hi = float(gap_s[0]), float(gap_s[1])

    def gap() -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))

    starts, t = [], gap()
    while t + length_s <= duration_s:
        starts.append(t)
        t += length_s + gap()
    return starts


def blink_profile(times: torch.Tensor, starts, close_s: float = BLINK_CLOSE_S,
                  open_s: float = BLINK_OPEN_S) -> torch.Tensor:
    """(T,) closure in [0, 1] at ``times`` (s): sin² up over ``close_s``, cos² down over
    ``open_s`` (smooth at both ends)."""
    times = times.to(torch.float64)
    out = torch.zeros_like(times)
    for s in starts:
        u = times - s
        closing = torch.sin(0.5 * math.pi * (u / close_s).clamp(0, 1)) ** 2
        opening = torch.cos(0.5 * math.pi * ((u - close_s) / open_s).clamp(0, 1)) ** 2
        value = torch.where(u < close_s, closing, opening)
        out = torch.maximum(out, torch.where((u >= 0) & (u <= close_s + open_s), value,
                                             torch.zeros_like(value)))
    return out


def add_blinks(exp: torch.Tensor, fps: float, seed: int, strength: float = 1.0,
               gap_s=(2.0, 5.0)) -> torch.Tensor:
    """exp (T,21,3) at ``fps`` with seeded blinks added on the eye keypoints."""
    n = exp.shape[0]
    times = torch.arange(n, dtype=torch.float64) / float(fps)
    closure = blink_profile(times, blink_starts(n / float(fps), seed, gap_s))
    closed = torch.zeros(21, 3, dtype=torch.float64)
    for kp, axis, value in EYE_CLOSED:
        closed[kp, axis] = value
    return exp + (closure[:, None, None] * closed * float(strength)).to(exp.dtype)
