"""Layout of Ditto's 265-d motion vector (spec ditto.md §3.6.1).

``[scale-1 | pitch 66 bin logits | yaw 66 | roll 66 | t 3 | exp 63]``; exp is
keypoint-major (index 202 + 3k + c). ``kp`` is never part of it: canonical keypoints
always come from the source. "Info" dicts hold numpy float32 arrays shaped (1, dim),
the motion extractor's per-frame layout.
"""
from __future__ import annotations

import numpy as np

DIM = 265
SLICES = {
    "scale": slice(0, 1),
    "pitch": slice(1, 67),
    "yaw": slice(67, 133),
    "roll": slice(133, 199),
    "t": slice(199, 202),
    "exp": slice(202, 265),
}
KEYS = tuple(SLICES)
POSE_END = 202           # dims [0, 202) are scale, pose and t; the smoother touches only these
INFO_KEYS = KEYS + ("kp",)


def info_to_row(info: dict) -> np.ndarray:
    """Motion-extractor info (arrays (1,dim) or (dim,)) -> (265,) float32 vector."""
    parts = []
    for k in KEYS:
        v = np.asarray(info[k], dtype=np.float32).reshape(-1)
        parts.append(v - 1 if k == "scale" else v)
    return np.concatenate(parts).astype(np.float32)


def row_to_info(row) -> dict:
    """(265,) vector -> {key: (1,dim) float32}, scale restored (+1). No kp."""
    row = np.asarray(row, dtype=np.float32).reshape(-1)
    out = {k: row[s].reshape(1, -1).copy() for k, s in SLICES.items()}
    out["scale"] = out["scale"] + np.float32(1)
    return out


def motion_info_frame(motion_info, index: int) -> dict:
    """Frame ``index`` of a :class:`~..types.MotionInfo` as an info dict of numpy arrays."""
    out = {}
    for k in INFO_KEYS:
        v = getattr(motion_info, k)[index]
        v = v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v, np.float32)
        out[k] = v.reshape(1, -1).astype(np.float32)
    return out


def info_from_arrays(info: dict) -> dict:
    """Any mapping of per-frame arrays -> info dict with (1,dim) float32 arrays."""
    out = {}
    for k in INFO_KEYS:
        if k in info:
            v = info[k]
            v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
            out[k] = v.astype(np.float32).reshape(1, -1)
    return out
