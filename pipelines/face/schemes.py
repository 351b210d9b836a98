"""Landmark layouts and the index maps between them.

A *scheme* names the layout of a landmark array (how many points and what each index
means). Every crop in the pack is placed from two anchors (the mean eye centre and the
lip centre) plus the extent of a set of points; this module says, per scheme, which
indices those are, so the crop maths never hard-codes a layout.

Layouts:
  insightface106  InsightFace 2d106det (LivePortrait's source-image path)
  lp203           LivePortrait's landmark.onnx (Ditto's render crop, video tracking)
  ibug68          the classic 68-point iBUG layout (MuseTalk's box, DWPose face points)
  mediapipe478    MediaPipe FaceLandmarker v2 (468 mesh points + 10 iris points)

"Left"/"right" below mean image left/right (the subject's right eye is image left).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ShapeError


@dataclass(frozen=True)
class Scheme:
    name: str
    count: int
    left_eye: tuple   # indices averaged into the image-left eye centre
    right_eye: tuple
    lip: tuple        # indices averaged into the lip centre (the mouth corners)


# Official LivePortrait / Ditto crop anchors (spec liveportrait.md Appendix B).
INSIGHTFACE106 = Scheme("insightface106", 106, (33, 35, 40, 39), (87, 89, 94, 93), (52, 61))
LP203 = Scheme("lp203", 203, (0, 6, 12, 18), (24, 30, 36, 42), (48, 66))
# LivePortrait's 68-point rule: eye centre = mean of the two eye corners, lip = mouth corners.
IBUG68 = Scheme("ibug68", 68, (36, 39), (42, 45), (48, 54))
# MediaPipe: eye contour corners + lid centres, lip = mouth corners. The crop itself is
# placed on the 68-point subset (see crop_points) so that its extent matches the
# 106/203 layouts (which, like iBUG 68, stop at the brows, while the mesh reaches the
# hairline).
MEDIAPIPE478 = Scheme("mediapipe478", 478, (33, 133, 159, 145), (362, 263, 386, 374), (61, 291))

SCHEMES = {s.name: s for s in (INSIGHTFACE106, LP203, IBUG68, MEDIAPIPE478)}

# iBUG-68 point i = MediaPipe mesh point MP478_TO_IBUG68[i]. Chosen on the mesh topology:
# jaw along the face oval from ear level to chin and back, brows along the upper brow
# contour, nose bridge from the nasion to the tip, nostril base, eye corners and lids
# (the same lid pairs Ditto's eye-openness uses), outer and inner lip contours.
MP478_TO_IBUG68 = np.array([
    # jaw 0-16 (image left ear level -> chin 8 -> image right)
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
    # brows 17-21 (image left, outer -> inner), 22-26 (image right, inner -> outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30 (nasion -> tip), nostril base 31-35
    168, 197, 195, 4, 98, 97, 2, 326, 327,
    # image-left eye 36-41 (outer corner, upper lid x2, inner corner, lower lid x2)
    33, 160, 158, 133, 153, 144,
    # image-right eye 42-47 (inner corner, upper lid x2, outer corner, lower lid x2)
    362, 385, 387, 263, 373, 380,
    # outer lip 48-59 (left corner, upper lip, right corner 54, lower lip)
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lip 60-67
    78, 81, 13, 311, 308, 402, 14, 178,
], dtype=np.int64)
assert MP478_TO_IBUG68.shape == (68,)

# MediaPipe iris centres (image-left, image-right); Ditto's eye-ball features use them.
MP478_IRIS = (468, 473)


def crop_points(landmarks: np.ndarray, scheme: Scheme) -> tuple[np.ndarray, Scheme]:
    """The points (and their scheme) that place a similarity crop for this layout."""
    if scheme.name == MEDIAPIPE478.name:
        return np.asarray(landmarks)[MP478_TO_IBUG68, :2], IBUG68
    return np.asarray(landmarks)[:, :2], scheme


def to_ibug68(landmarks: np.ndarray, scheme_name: str) -> np.ndarray:
    """(..., K, 2+) landmarks -> (..., 68, 2) iBUG-68 points (MuseTalk's box needs them)."""
    lm = np.asarray(landmarks)
    if scheme_name == IBUG68.name:
        return lm[..., :2]
    if scheme_name == MEDIAPIPE478.name:
        return lm[..., MP478_TO_IBUG68, :2]
    raise ShapeError(f"no 68-point map from '{scheme_name}' landmarks; register the face "
                     "with the MediaPipe detector to get iBUG-68 points")


def eye_centres(landmarks: np.ndarray, scheme: Scheme) -> np.ndarray:
    """(2,2): image-left and image-right eye centres."""
    lm = np.asarray(landmarks)[:, :2]
    return np.stack([lm[list(scheme.left_eye)].mean(0), lm[list(scheme.right_eye)].mean(0)])
