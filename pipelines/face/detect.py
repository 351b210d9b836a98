"""One interface over the face detectors, and detection at a workable resolution.

A detector backend only has to find the largest face in an RGB uint8 image that is
already a sensible size; :func:`detect_in_frame` takes care of the rest for every
backend alike: it shrinks huge frames, enlarges tiny ones, restricts the search to a
region (a manual box or the previous frame's crop) and maps the result back to frame
pixels.

Coordinates are pixel centres (pixel (0,0) is the point (0,0)), as in LivePortrait.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Protocol

import cv2
import numpy as np

from .crop import resize_matrix, warp_crop

DETECT_MAX_SIDE = 1280   # huge frames are searched on a copy at most this large
DETECT_MIN_SIDE = 256    # tiny frames are enlarged to at least this
MAX_UPSCALE = 8.0
REGION_SIDE = 512        # a region (manual box, previous crop) is searched at this size


@dataclass
class FaceObservation:
    """The largest face found in one image.

    scheme: landmark layout of ``landmarks`` ("mediapipe478", "lp203", ...), or "eyes"
        when only the eyes were located (then ``landmarks`` is None).
    landmarks: (K,2) float32 pixels. depth: optional (K,) z in the same pixel units.
    eyes: (2,2) image-left and image-right eye centres. box: (x0, y0, x1, y1).
    mesh478: optional (478,3) MediaPipe points (x, y, z pixels) when a detector path
        other than MediaPipe also ran a MediaPipe landmarker (Ditto's eye features).
    """

    scheme: str
    landmarks: Optional[np.ndarray]
    eyes: np.ndarray
    box: np.ndarray
    score: float = 1.0
    depth: Optional[np.ndarray] = None
    mesh478: Optional[np.ndarray] = None

    def transformed(self, matrix: np.ndarray) -> "FaceObservation":
        """The same face under a 3x3 similarity ``matrix`` (z scales with it)."""
        m = np.asarray(matrix, np.float64)
        scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))

        def move(points):
            if points is None:
                return None
            p = np.asarray(points, np.float64)
            xy = p[..., :2] @ m[:2, :2].T + m[:2, 2]
            if p.shape[-1] > 2:
                xy = np.concatenate([xy, p[..., 2:] * scale], -1)
            return xy.astype(np.float32)

        corners = move(np.array([[self.box[0], self.box[1]], [self.box[2], self.box[1]],
                                 [self.box[0], self.box[3]], [self.box[2], self.box[3]]]))
        box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
        return replace(self, landmarks=move(self.landmarks), eyes=move(self.eyes), box=box,
                       depth=None if self.depth is None else (self.depth * scale).astype(np.float32),
                       mesh478=move(self.mesh478))


class FaceDetector(Protocol):
    """What :func:`register_faces` needs from a detector backend."""

    scheme: str  # the landmark layout of its full observations

    def detect(self, image: np.ndarray) -> Optional[FaceObservation]:
        """The largest face in a contiguous (H,W,3) RGB uint8 image, or None."""

    def close(self) -> None:
        """Release native resources."""


def detection_view(frame: np.ndarray, region=None):
    """(view, M_frame_to_view): the image a backend is shown and how frame pixels map
    onto it. ``region`` is (x0, y0, x1, y1) in frame pixels; it may reach outside."""
    h, w = frame.shape[:2]
    if region is None:
        factor = 1.0
        if max(h, w) > DETECT_MAX_SIDE:
            factor = DETECT_MAX_SIDE / max(h, w)
        elif min(h, w) < DETECT_MIN_SIDE:
            factor = min(DETECT_MIN_SIDE / min(h, w), MAX_UPSCALE)
        if factor == 1.0:
            return frame, np.eye(3)
        new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        view = cv2.resize(frame, (new_w, new_h), interpolation=interp)
        return np.ascontiguousarray(view), resize_matrix(w, h, new_w, new_h)
    x0, y0, x1, y1 = (float(v) for v in region)
    side = max(x1 - x0, y1 - y0, 1.0)
    s = REGION_SIDE / side
    out_w, out_h = max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))
    m = np.array([[s, 0, -s * x0], [0, s, -s * y0], [0, 0, 1.0]])
    return np.ascontiguousarray(warp_crop(frame, m, (out_w, out_h))), m


def detect_in_frame(detector: FaceDetector, frame: np.ndarray,
                    region=None) -> Optional[FaceObservation]:
    """The largest face in ``frame`` (inside ``region`` if given), in frame pixels."""
    view, m = detection_view(frame, region)
    found = detector.detect(view)
    if found is None:
        return None
    return found if np.array_equal(m, np.eye(3)) else found.transformed(np.linalg.inv(m))


def square_region(center, side: float):
    """(x0, y0, x1, y1) of an axis-aligned square."""
    cx, cy = float(center[0]), float(center[1])
    half = float(side) / 2
    return cx - half, cy - half, cx + half, cy + half
