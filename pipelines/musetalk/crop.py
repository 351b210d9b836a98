"""Face box from 68 iBUG landmarks and the 256x256 crop (spec §1.2).

Reference rule (``get_landmark_and_bbox``), on landmarks truncated to int32:
``half_y = lm29.y + bbox_shift``; ``y1 = max(0, 2*half_y - max(lm.y))``;
``box = (min lm.x, y1, max lm.x, max lm.y)``; if the box is empty or ``x1 < 0`` the face
detector's box is used instead. v1.5 then extends the bottom by ``extra_margin``
(default 10 px, clipped to the frame); the same box is used to crop and to paste back.

``bbox_shift`` in v1.5: the reference hardcodes 0 for v1.5; we apply v1's rule, so a
shift of ``b`` px moves the box top by ``2*b`` px and the masked lower-half boundary
(the crop's centre row) by ``b`` px; the bottom (chin + margin) stays. Positive values
lower the boundary (more mouth area regenerated), negative values raise it.

Partially reliable landmarks (masks, hands, profile): points may be NaN (or flagged
unreliable). The box then uses the reliable points only; a missing lm29 (the anchor) is
taken as the midpoint of lm28 and lm30, or extrapolated along the nose bridge (27..30).
Without any nose-bridge point, or with fewer than 2 distinct reliable x positions, the
landmark box is rejected like an invalid one (detector box, else no face). The
reference's "adjustable range" hint divides by the number of frames with a face and
crashed with ZeroDivisionError on faceless input (issue #17); :func:`bbox_shift_range`
returns (0, 0) then.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..core.errors import ShapeError

CROP_SIZE = 256
ANCHOR = 29  # lower nose-bridge point: the crop is vertically symmetric about it


def _anchor_y(lm: np.ndarray, ok: np.ndarray) -> Optional[int]:
    if ok[ANCHOR]:
        return int(lm[ANCHOR, 1])
    if ok[28] and ok[30]:
        return int((lm[28, 1] + lm[30, 1]) // 2)
    bridge = [i for i in (27, 28, 30) if ok[i]]
    if len(bridge) >= 2:  # the four bridge points are roughly evenly spaced
        (i, j) = bridge[:2]
        step = (lm[j, 1] - lm[i, 1]) / (j - i)
        return int(np.trunc(lm[i, 1] + step * (ANCHOR - i)))
    return None


def landmark_box(landmarks68, bbox_shift: int = 0, reliable=None) -> Optional[tuple]:
    """The reference's landmark box (before margin and validity checks), or None when
    too few reliable landmarks remain. Returns (x1, y1, x2, y2) ints, end exclusive."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ShapeError(f"face landmarks must be (68, 2) iBUG points, got {lm.shape}")
    ok = np.isfinite(lm).all(axis=1)
    if reliable is not None:
        ok &= np.asarray(reliable, dtype=bool)
    lm = np.where(ok[:, None], lm, 0.0)
    lm = np.trunc(lm).astype(np.int64)  # the reference casts to int32 (toward zero)
    anchor = _anchor_y(lm, ok)
    if anchor is None or len(np.unique(lm[ok, 0])) < 2:
        return None
    half_y = anchor + int(bbox_shift)
    ys = lm[ok, 1]
    if ok[ANCHOR]:  # the reference writes the shifted anchor into the landmark array
        ys = np.where(np.flatnonzero(ok) == ANCHOR, half_y, ys)
    y2 = int(ys.max())
    y1 = max(0, half_y - (y2 - half_y))
    return int(lm[ok, 0].min()), int(y1), int(lm[ok, 0].max()), y2


def face_box(landmarks68, frame_hw: tuple, bbox_shift: int = 0, extra_margin: int = 10,
             fallback_box=None, reliable=None) -> Optional[tuple]:
    """One frame's crop box (x1, y1, x2, y2) incl. ``extra_margin``, or None (no face).

    Without a detector ``fallback_box``, a landmark box that only fails because it
    pokes out of the frame on the left is clipped instead of rejected.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    box = landmark_box(landmarks68, bbox_shift, reliable)
    bad = box is None or box[3] - box[1] <= 0 or box[2] - box[0] <= 0 or box[0] < 0
    if bad:
        if fallback_box is not None:
            box = tuple(int(v) for v in fallback_box)
        elif box is not None and box[0] < 0 and box[2] > 0 and box[3] > box[1]:
            box = (0,) + tuple(box[1:])
        else:
            return None
    x1, y1, x2, y2 = box
    y2 = min(y2 + int(extra_margin), h)
    x1, y1, x2 = max(0, x1), max(0, y1), min(x2, w)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return x1, y1, x2, y2


def face_boxes(landmarks68, frame_hw: tuple, bbox_shift: int = 0, extra_margin: int = 10,
               fallback_boxes=None, face_found=None, reliable=None):
    """Per-frame boxes for (N,68,2) landmarks -> (boxes (N,4) int32, found (N,) bool).

    ``face_found`` (N,) marks frames whose landmarks are meaningless (detector found
    nothing); ``fallback_boxes`` (N,4) are detector boxes used when the landmark box is
    invalid; ``reliable`` (N,68) flags trustworthy points. Faceless frames get
    (0,0,0,0) and found=False; the pipeline passes them through unchanged.
    """
    lms = np.asarray(landmarks68, dtype=np.float64)
    if lms.ndim != 3 or lms.shape[1:] != (68, 2):
        raise ShapeError(f"landmarks must be (N, 68, 2) iBUG points, got {lms.shape}")
    n = lms.shape[0]
    boxes = np.zeros((n, 4), np.int32)
    found = np.zeros(n, bool)
    for i in range(n):
        if face_found is not None and not bool(face_found[i]):
            continue
        fb = None if fallback_boxes is None else fallback_boxes[i]
        if fb is not None and not np.all(np.isfinite(np.asarray(fb, dtype=np.float64))):
            fb = None
        rel = None if reliable is None else reliable[i]
        box = face_box(lms[i], frame_hw, bbox_shift, extra_margin, fb, rel)
        if box is not None:
            boxes[i], found[i] = box, True
    return boxes, found


def bbox_shift_range(landmarks68, face_found=None) -> tuple:
    """The reference's console hint: [-mean(lm30.y - lm29.y), +mean(lm29.y - lm28.y)]
    over frames with a face, as ints; (0, 0) when no frame qualifies."""
    lms = np.trunc(np.asarray(landmarks68, dtype=np.float64))
    sel = np.isfinite(lms[:, [28, 29, 30], 1]).all(axis=1)
    if face_found is not None:
        sel &= np.asarray(face_found, bool)
    if not sel.any():
        return 0, 0
    minus = float(np.mean(lms[sel, 30, 1] - lms[sel, 29, 1]))
    plus = float(np.mean(lms[sel, 29, 1] - lms[sel, 28, 1]))
    return -int(minus), int(plus)


def crop_face(frame_u8: np.ndarray, box) -> np.ndarray:
    """frame[y1:y2, x1:x2] resized to 256x256 with Lanczos-4 (aspect ratio not kept)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return cv2.resize(np.ascontiguousarray(frame_u8[y1:y2, x1:x2]), (CROP_SIZE, CROP_SIZE),
                      interpolation=cv2.INTER_LANCZOS4)
