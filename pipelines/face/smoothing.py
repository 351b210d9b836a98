"""Temporal smoothing over frames: one centred moving average for everything.

Ditto smooths a video source's motion-extractor outputs (``smo_k_s`` = 13) with a
centred window truncated at the sequence ends; :func:`centered_moving_average` does
exactly that (bit-exact in float32). The crop track uses the same average with
``shrink_at_ends=True``: the window shrinks symmetrically near the ends so a steadily
moving head is followed without lag (a truncated one-sided window would trail it).
"""
from __future__ import annotations

import numpy as np


def centered_moving_average(x, window: int, shrink_at_ends: bool = False) -> np.ndarray:
    """Mean over frames i-window//2 .. i+window//2 (axis 0), truncated at the ends, or
    with a half-width min(window//2, i, n-1-i) when ``shrink_at_ends``."""
    x = np.asarray(x)
    n, half = len(x), int(window) // 2
    if n <= 1 or half <= 0:
        return x.copy()
    out = np.empty_like(x)
    for i in range(n):
        h = min(half, i, n - 1 - i) if shrink_at_ends else half
        out[i] = x[max(0, i - h):min(n, i + h + 1)].mean(axis=0)
    return out


def smooth_motion_info(info: dict, window: int = 13) -> dict:
    """Ditto's ``smooth_x_s_info_lst`` on stacked per-frame arrays: {key: (N, ...)}."""
    return {k: centered_moving_average(v, window) for k, v in info.items()}


def smooth_rects(rects: np.ndarray, window: int) -> np.ndarray:
    """(N,4) crop rectangles (cx, cy, side, angle) smoothed over time. The side is
    averaged in log space (zoom is multiplicative) and the angle unwrapped first."""
    rects = np.asarray(rects, np.float64)
    if len(rects) <= 1 or window <= 1:
        return rects.copy()
    params = np.stack([rects[:, 0], rects[:, 1], np.log(rects[:, 2]),
                       np.unwrap(rects[:, 3])], 1)
    sm = centered_moving_average(params, window, shrink_at_ends=True)
    return np.stack([sm[:, 0], sm[:, 1], np.exp(sm[:, 2]), sm[:, 3]], 1)
