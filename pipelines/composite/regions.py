"""Face regions from landmarks, as convex polygons described by half-planes.

Every region here is convex (a landmark hull, optionally cut by the nose line, always
clipped to the crop square so the render exists there). Inside a convex polygon the
distance to its boundary is the minimum of the distances to its edge lines, so a
feathered mask is ``clip(min_i(n_i . p - c_i) / feather, 0, 1)``: an exact linear
ramp, anti-aliased, evaluated on the GPU with no distance transform and no raster step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import torch

from .warp import Roi

# ---------------------------------------------------------------------------------------
# landmark layouts

# MediaPipe FaceMesh 478 (468 mesh + 10 iris), indices of the canonical face model.
# FACEMESH_FACE_OVAL walked in order: forehead top (10) -> right side of the image ->
# chin (152) -> left side. The outline of the face; its hull is the "face" region.
MP_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
                378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127,
                162, 21, 54, 103, 67, 109)
# FACEMESH_LIPS outer contour (upper 61..291 via 0, lower 291..61 via 17): the mouth.
MP_LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17,
                 84, 181, 91, 146)
# Eye corners (outer, inner): the subject's right eye (image left) and left eye.
MP_RIGHT_EYE = (33, 133)
MP_LEFT_EYE = (362, 263)
# Nose tip (pronasale); the lower-face cut passes through it.
MP_NOSE_TIP = (1,)

# LivePortrait's 203-point and InsightFace-style 106-point layouts: the eye and lip
# anchors the official crop uses (../shared/fidelity/liveportrait README, landmarks).
LMK203_EYES = ((0, 6, 12, 18), (24, 30, 36, 42))
LMK203_MOUTH = (48, 66)  # lip corners
LMK106_EYES = ((33, 35, 40, 39), (87, 89, 94, 93))
LMK106_MOUTH = (52, 61)

# Without a nose landmark the cut sits this far from the eye line toward the mouth
# centre (the nose tip lies at roughly 0.55-0.65 of that distance on adult faces).
NOSE_LINE_FRACTION = 0.6
# Without eye/mouth anchors at all: the cut at this fraction of the landmarks' extent
# along the face's down axis (top of the landmark cloud = 0, bottom = 1).
GENERIC_CUT_FRACTION = 0.5


@dataclass(frozen=True)
class LandmarkLayout:
    """What the regions need to know about a landmark scheme.

    outline: indices whose hull is the face (None: all points).
    eyes: two index groups whose means are the eye centres (None: unknown).
    mouth / nose: index groups whose mean is the mouth centre / a point on the nose line.
    """

    name: str
    counts: tuple  # point counts this layout applies to
    outline: Optional[tuple] = None
    eyes: Optional[tuple] = None
    mouth: Optional[tuple] = None
    nose: Optional[tuple] = None


# 468 = the same mesh without the 10 iris points
MEDIAPIPE478 = LandmarkLayout("mediapipe478", (478, 468), MP_FACE_OVAL, (MP_RIGHT_EYE, MP_LEFT_EYE),
                              MP_LIPS_OUTER, MP_NOSE_TIP)
LMK203 = LandmarkLayout("lmk203", (203,), None, LMK203_EYES, LMK203_MOUTH)
LMK106 = LandmarkLayout("lmk106", (106,), None, LMK106_EYES, LMK106_MOUTH)
GENERIC = LandmarkLayout("generic", ())
LAYOUTS = (MEDIAPIPE478, LMK203, LMK106)


def resolve_layout(scheme: Optional[str], count: int) -> LandmarkLayout:
    """The layout for a scheme ("mediapipe478", "lmk203", "lmk106", ... or "generic").

    Chosen by the point count, so the face module's exact spelling of the scheme name
    does not matter; "generic" (or an unknown count) gives the index-free fallbacks.
    """
    if (scheme or "").lower() == "generic":
        return GENERIC
    return next((lay for lay in LAYOUTS if count in lay.counts), GENERIC)


# ---------------------------------------------------------------------------------------
# half-planes: rows (nx, ny, c), inside where nx*x + ny*y - c >= 0, |n| = 1


def polygon_planes(points: np.ndarray) -> np.ndarray:
    """Half-planes of the convex hull of (V, 2) points; (0, 3) if the hull is degenerate."""
    pts = points[np.isfinite(points).all(axis=1)]
    if len(pts) < 3:
        return np.zeros((0, 3))
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return np.zeros((0, 3))
    centre = hull.mean(axis=0)
    edges = np.roll(hull, -1, axis=0) - hull
    length = np.linalg.norm(edges, axis=1)
    keep = length > 1e-6
    normal = np.stack([-edges[:, 1], edges[:, 0]], axis=1)[keep] / length[keep, None]
    base = hull[keep]
    flip = np.einsum("ij,ij->i", normal, centre - base) < 0  # point the normals inward
    normal[flip] *= -1
    return np.concatenate([normal, np.einsum("ij,ij->i", normal, base)[:, None]], axis=1)


def square_planes(crop_to_frame: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Half-planes of the crop-space square [lo, hi]^2 mapped into the frame."""
    corners = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], np.float64)
    m = np.asarray(crop_to_frame, np.float64)[:2]
    return polygon_planes(corners @ m[:, :2].T + m[:, 2])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _down_axis(pts: np.ndarray, layout: LandmarkLayout, crop_down: np.ndarray) -> np.ndarray:
    """Unit vector from the forehead toward the chin, in frame pixels.

    Perpendicular to the eye line when the eyes are known (robust to head roll), else
    the crop's +y axis (the similarity crops are upright by construction).
    """
    if layout.eyes is None:
        return crop_down
    right, left = (pts[list(g)].mean(axis=0) for g in layout.eyes)
    eye_dir = left - right
    down = _unit(np.array([-eye_dir[1], eye_dir[0]]))
    toward = (pts[list(layout.mouth)].mean(axis=0) - (left + right) / 2
              if layout.mouth is not None else crop_down)
    return down if down @ toward >= 0 else -down


def nose_plane(pts: np.ndarray, layout: LandmarkLayout, crop_down: np.ndarray) -> np.ndarray:
    """The half-plane below the nose line (perpendicular to the face's down axis)."""
    down = _down_axis(pts, layout, crop_down)
    if layout.nose is not None:
        anchor = pts[list(layout.nose)].mean(axis=0)
    elif layout.eyes is not None and layout.mouth is not None:
        eye = np.mean([pts[list(g)].mean(axis=0) for g in layout.eyes], axis=0)
        mouth = pts[list(layout.mouth)].mean(axis=0)
        anchor = eye + NOSE_LINE_FRACTION * (mouth - eye)
    else:
        proj = pts @ down
        cut = proj.min() + GENERIC_CUT_FRACTION * (proj.max() - proj.min())
        return np.array([[down[0], down[1], cut]])
    return np.array([[down[0], down[1], down @ anchor]])


def landmark_planes(region: str, landmarks: np.ndarray, layout: LandmarkLayout,
                    crop_to_frame: np.ndarray, crop_size: int) -> np.ndarray:
    """Half-planes of ``region`` ("face" or "lower_face") for one frame's (K, 2) landmarks,
    clipped to the crop square. (0, 3) when the landmarks are unusable (NaN, too few)."""
    pts = np.asarray(landmarks, np.float64)
    if not np.isfinite(pts).all():
        return np.zeros((0, 3))
    outline = pts if layout.outline is None else pts[list(layout.outline)]
    hull = polygon_planes(outline)
    if len(hull) == 0:
        return hull
    planes = [hull, square_planes(crop_to_frame, 0.0, crop_size - 1.0)]
    if region == "lower_face":
        crop_down = _unit(np.asarray(crop_to_frame, np.float64)[:2, 1])
        planes.append(nose_plane(pts, layout, crop_down))
    return np.concatenate(planes)


# ---------------------------------------------------------------------------------------
# evaluation


def stack_planes(per_frame: list) -> torch.Tensor:
    """Pad per-frame (E_i, 3) arrays into (B, E, 3); padding rows never bind.

    A frame without planes (no usable landmarks) gets one plane that excludes every
    pixel, so its mask is 0 and the original frame shows.
    """
    rows = max(max((len(p) for p in per_frame), default=1), 1)
    out = np.tile(np.array([0.0, 0.0, -1e9]), (len(per_frame), rows, 1))
    for i, p in enumerate(per_frame):
        if len(p) == 0:
            out[i, 0] = (0.0, 0.0, 1e9)
        else:
            out[i, :len(p)] = p
    return torch.from_numpy(out)


def plane_distance(planes: torch.Tensor, roi: Roi, device, anchors: torch.Tensor) -> torch.Tensor:
    """Signed distance (B, h, w) to the boundary of the convex region (>0 inside).

    Each frame's distances are computed in float32 relative to its own ``anchors`` (B, 2)
    integer frame pixel (x, y) near the face: precise, and the same whatever the batch
    (and so its ROI) the frame is in.
    """
    anchors = anchors.to(torch.float64)
    n = planes[..., :2]
    c = planes[..., 2] - (n @ anchors[:, :, None])[..., 0]  # re-anchor in float64
    # the ROI origin - anchor: integers, so x - anchor is exact in float32
    off = (torch.tensor([roi.x0, roi.y0], dtype=torch.float64) - anchors).to(device, torch.float32)
    n = n.to(device=device, dtype=torch.float32)
    c = c.to(device=device, dtype=torch.float32)
    b, e, (h, w) = planes.shape[0], planes.shape[1], roi.shape
    xs = (torch.arange(w, dtype=torch.float32, device=device) + off[:, :1])[:, None, None, :]
    ys = (torch.arange(h, dtype=torch.float32, device=device) + off[:, 1:])[:, None, :, None]
    # planes in chunks: few kernel launches, bounded memory (<= ~2^24 values at a time)
    step = max(1, min(e, (1 << 24) // max(b * h * w, 1)))
    dist = None
    for e0 in range(0, e, step):
        nc, cc = n[:, e0:e0 + step, :, None, None], c[:, e0:e0 + step, None, None]
        d = (nc[:, :, 0] * xs + nc[:, :, 1] * ys - cc).amin(dim=1)
        dist = d if dist is None else torch.minimum(dist, d)
    return dist


def feather_ramp(dist: torch.Tensor, feather: torch.Tensor) -> torch.Tensor:
    """0 outside, a linear ramp over ``feather`` px inside the boundary, 1 deeper.

    feather 0 still anti-aliases over one pixel centred on the boundary.
    """
    f = feather.to(dist.device, torch.float32)[:, None, None]
    soft = torch.clamp(dist / f.clamp_min(1e-6), 0.0, 1.0)
    hard = torch.clamp(dist + 0.5, 0.0, 1.0)
    return torch.where(f > 0, soft, hard)
