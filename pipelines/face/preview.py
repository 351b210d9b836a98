"""A picture of one frame's registration, for the Face Crop Preview node."""
from __future__ import annotations

import cv2
import numpy as np

from .crop import RENDER_DSIZE, transform_points
from .frames import as_uint8_frames
from .schemes import SCHEMES, crop_points, eye_centres

# RGB colour of the crop square per kind of result
KIND_COLOURS = {"detected": (0, 220, 0), "eyes": (0, 200, 255), "reused": (255, 200, 0),
                "manual": (255, 0, 255), "fallback": (255, 40, 40)}


def draw_preview(frame, track, index: int = 0, draw_all_points: bool = False) -> np.ndarray:
    """(H,W,3) uint8 RGB: ``frame`` with frame ``index`` of ``track`` drawn on it.

    The rotated crop square (its top edge thicker, so the rotation is visible), the
    landmarks that place the crop (all points with ``draw_all_points``), the eye
    centres, and the kind of result in the corner. Lines scale with the frame size.
    """
    image = as_uint8_frames(frame)[0].copy()
    h, w = image.shape[:2]
    thick = max(2, round(max(h, w) / 400))
    kind = track.kinds[index]
    colour = KIND_COLOURS.get(kind, (255, 255, 255))

    last = RENDER_DSIZE - 1
    corners = transform_points(np.array([[0, 0], [last, 0], [last, last], [0, last]],
                                        np.float64), track.crop_to_frame[index])
    corners = np.round(corners).astype(np.int32)
    cv2.polylines(image, [corners.reshape(-1, 1, 2)], True, colour, thick, cv2.LINE_8)
    cv2.line(image, tuple(corners[0]), tuple(corners[1]), colour, thick * 2, cv2.LINE_8)

    landmarks = np.asarray(track.landmarks[index])
    if landmarks.size and np.isfinite(landmarks).all():
        scheme = SCHEMES.get(track.scheme)
        shown = landmarks if draw_all_points or scheme is None else crop_points(landmarks, scheme)[0]
        radius = max(1, thick // 2)
        for x, y in np.round(shown).astype(int):
            cv2.circle(image, (int(x), int(y)), radius, (255, 255, 0), -1, cv2.LINE_AA)
        if scheme is not None:
            for x, y in np.round(eye_centres(landmarks, scheme)).astype(int):
                cv2.circle(image, (int(x), int(y)), radius * 3, (255, 0, 0), thick, cv2.LINE_AA)

    label = f"{index}: {kind}"
    font_scale = max(0.4, max(h, w) / 1000)
    cv2.putText(image, label, (8, int(24 * font_scale + 8)), cv2.FONT_HERSHEY_SIMPLEX,
                font_scale, colour, thick, cv2.LINE_AA)
    return image
