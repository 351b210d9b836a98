"""Eye attributes from MediaPipe's 478 face landmarks (spec ditto.md §3.2.3).

They become part of the LMDM condition: eye openness (2) and the iris offset from the
eye centre with the eye-corner direction removed (6). Landmarks are MediaPipe's
normalised crop coordinates (x, y in [0,1], relative z); all distances are 3-D.
"""
from __future__ import annotations

import numpy as np
from ..core.errors import ShapeError

# (outer corner, inner corner, three upper/lower lid pairs, iris centre)
_LEFT = (33, 133, ((145, 159), (144, 160), (153, 158)), 468)
_RIGHT = (263, 362, ((374, 386), (373, 387), (380, 385)), 473)


def _one_eye(p: np.ndarray, spec):
    corner_a, corner_b, lids, iris = spec
    dist = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    width = dist(p[:, corner_a], p[:, corner_b])
    heights = sum(dist(p[:, a], p[:, b]) for a, b in lids)
    openness = heights / (width + 1e-8)
    centre = (p[:, corner_a] + p[:, corner_b]) * 0.5
    direction = (p[:, corner_a] - p[:, corner_b]) / (width[:, None] + 1e-8)
    offset = p[:, iris] - centre
    r = dist(p[:, iris], centre)[:, None]
    # the iris offset's direction relative to the eye axis, scaled back by its length
    ball = (offset / (r + 1e-8) - direction) * r
    return openness, ball


def eye_attributes(landmarks478) -> tuple:
    """(N,478,3) or (478,3) landmarks -> (eye_open (N,2), eye_ball (N,6)) float32.

    eye_ball is ordered [Lx, Rx, Ly, Ry, Lz, Rz] (left/right interleaved per axis).
    """
    p = np.asarray(landmarks478, dtype=np.float32)
    if p.ndim == 2:
        p = p[None]
    if p.shape[1:] != (478, 3):
        raise ShapeError(f"eye_attributes needs (N,478,3) MediaPipe landmarks, got {p.shape}")
    open_l, ball_l = _one_eye(p, _LEFT)
    open_r, ball_r = _one_eye(p, _RIGHT)
    eye_open = np.stack([open_l, open_r], axis=1).astype(np.float32)
    eye_ball = np.stack([ball_l, ball_r], axis=-1).reshape(len(p), 6).astype(np.float32)
    return eye_open, eye_ball
