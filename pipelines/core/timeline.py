"""Which source frame each output frame uses, when a source and its driver differ in length.

One rule set for every family: ``ping-pong`` is the originals' walk (Ditto, MuseTalk):
forward, backward, forward..., each end frame shown twice, so the head never jumps.
"""
from __future__ import annotations

import numpy as np
import torch

from .choices import FRAME_ORDERS as MODES
from .choices import LENGTH_MODES
from .errors import TalkingHeadError


def mirror_index(i: int, n: int) -> int:
    """Ping-pong index: 0,1,..,n-1,n-1,..,0,0,1,.."""
    turn, r = divmod(int(i), int(n))
    return r if turn % 2 == 0 else n - r - 1


def mirror_indices(frames, n: int) -> np.ndarray:
    """Vectorised :func:`mirror_index` over an array of frame numbers (>= 0)."""
    turn, r = np.divmod(np.asarray(frames, dtype=np.int64), int(n))
    return np.where(turn % 2 == 0, r, n - r - 1).astype(np.int64)


def frame_order(n_source: int, n_out: int, mode: str) -> np.ndarray:
    """(n_out,) indices into ``n_source`` frames: "cycle", "ping-pong" or "hold" (the last)."""
    i = np.arange(n_out, dtype=np.int64)
    if n_source <= 1:
        return np.zeros(n_out, np.int64)
    if mode == "hold":
        return np.minimum(i, n_source - 1)
    if mode == "ping-pong":
        return mirror_indices(i, n_source)
    if mode == "cycle":
        return i % n_source
    raise TalkingHeadError(f"frame order must be one of {MODES}, got {mode!r}")


def frame_mapping(n_source: int, n_driving: int, mode: str) -> tuple:
    """A source of ``n_source`` frames driven by ``n_driving`` frames: (output frames,
    source_index (T,) int64). "cut" stops at the shorter of the two (for a video source);
    the others run for the driver's length and walk the source by their rule."""
    if mode not in LENGTH_MODES:
        raise TalkingHeadError(f"length mode must be one of {', '.join(LENGTH_MODES)}, got {mode!r}")
    n_out = min(n_source, n_driving) if mode == "cut" and n_source > 1 else n_driving
    order = {"hold last source frame": "hold", "ping-pong": "ping-pong"}.get(mode, "cycle")
    return n_out, torch.from_numpy(frame_order(n_source, n_out, order))
