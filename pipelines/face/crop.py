"""The landmark-based similarity crop of LivePortrait and Ditto, and its inverse.

A crop is a rotated square in the original frame (centre, side, angle) mapped onto a
``dsize`` x ``dsize`` image. The arithmetic of :func:`rect_from_landmarks` and
:func:`crop_matrices` is done in float32 in the reference's order, so that a single
image gives the reference's matrices bit for bit (Ditto's golden is bit-exact). The one
intended difference: ``vx_ratio`` is honoured (the originals never forward it); at
vx_ratio = 0 the extra term is an exact zero, so the goldens are unaffected.

Render crop: dsize 512, scale 2.3, vy_ratio -0.125 (LivePortrait and Ditto source).
Landmark-203 tracking crop: dsize 224, scale 1.5, vy_ratio -0.1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .schemes import Scheme

RENDER_DSIZE, RENDER_SCALE, RENDER_VY = 512, 2.3, -0.125
LMK203_DSIZE, LMK203_SCALE, LMK203_VY = 224, 1.5, -0.1
NETWORK_SIZE = 256

# Eye-only alignment: the render crop placed from the two eye centres alone. Measured on
# the MediaPipe landmark crop of the fixture portrait (frontal): the landmark extent is
# 2.10 eye distances and its centre lies 0.71 eye distances below the eye centre (before
# the crop's scale and vy shift). InsightFace-106-like hand-placed landmarks give
# 2.24 / 0.81, so expect eye-only crops to differ from landmark crops by a few percent.
EXTENT_PER_EYE_DISTANCE = 2.10
CENTRE_BELOW_EYES_PER_EYE_DISTANCE = 0.71


@dataclass
class CropRect:
    """A rotated square: centre (x, y) in frame pixels, side in pixels, angle in radians.

    ``angle`` is the rotation of the face's x axis in the image (positive = clockwise on
    screen, y pointing down); the crop undoes it so the face is upright.
    """

    center: np.ndarray  # (2,) float32
    size: float
    angle: float

    def as_array(self) -> np.ndarray:
        return np.array([self.center[0], self.center[1], self.size, self.angle], np.float64)


def _shift(center, ux, uy, size2, vx_ratio, vy_ratio):
    # size2 is the (2,) float32 side; float32 products in the reference's order
    return center + ux * (np.float32(vx_ratio) * size2) + uy * (np.float32(vy_ratio) * size2)


def rect_from_anchors(points: np.ndarray, eye: np.ndarray, lip: np.ndarray, scale: float,
                      vx_ratio: float = 0.0, vy_ratio: float = 0.0) -> CropRect:
    """Square crop whose 'down' axis runs from the eye centre to the lip centre and whose
    side is ``scale`` x the extent of ``points`` measured along that frame."""
    pts = np.asarray(points, np.float32)
    uy = (np.asarray(lip, np.float32) - np.asarray(eye, np.float32)).astype(np.float32)
    length = np.linalg.norm(uy)
    if length <= 1e-3:
        uy = np.array([0, 1], dtype=np.float32)
    else:
        uy = uy / length
    ux = np.array((uy[1], -uy[0]), dtype=np.float32)
    angle = math.acos(float(ux[0]))
    if ux[1] < 0:
        angle = -angle
    axes = np.array([ux, uy])
    center0 = np.mean(pts, axis=0)
    rotated = (pts - center0) @ axes.T
    lo, hi = np.min(rotated, axis=0), np.max(rotated, axis=0)
    center1 = (lo + hi) / 2
    extent = hi - lo
    side = max(extent[0], extent[1])
    size2 = np.array([side, side], dtype=np.float32)
    size2 *= scale
    center = center0 + ux * center1[0] + uy * center1[1]
    center = _shift(center, ux, uy, size2, vx_ratio, vy_ratio)
    return CropRect(center.astype(np.float32), np.float32(size2[0]), angle)


def rect_from_landmarks(landmarks: np.ndarray, scheme: Scheme, scale: float = RENDER_SCALE,
                        vx_ratio: float = 0.0, vy_ratio: float = RENDER_VY) -> CropRect:
    """The official ``parse_rect_from_landmark`` for a 106/203/68-point layout."""
    pts = np.asarray(landmarks, np.float32)[:, :2]
    left = np.mean(pts[list(scheme.left_eye)], axis=0)
    right = np.mean(pts[list(scheme.right_eye)], axis=0)
    eye = (left + right) / 2
    if len(scheme.lip) == 2:
        lip = (pts[scheme.lip[0]] + pts[scheme.lip[1]]) / 2
    else:
        lip = np.mean(pts[list(scheme.lip)], axis=0)
    return rect_from_anchors(pts, eye, lip, scale, vx_ratio, vy_ratio)


def rect_from_eyes(eyes: np.ndarray, scale: float = RENDER_SCALE, vx_ratio: float = 0.0,
                   vy_ratio: float = RENDER_VY) -> CropRect:
    """Eye-only alignment: the render crop from the image-left and image-right eye centres,
    for faces whose lower half no landmarker can place (calibrated on landmark crops)."""
    eyes = np.asarray(eyes, np.float64).reshape(2, 2)
    ux = eyes[1] - eyes[0]
    distance = max(float(np.linalg.norm(ux)), 1e-3)
    ux = ux / distance
    uy = np.array([-ux[1], ux[0]])  # 90 degrees clockwise on screen: towards the mouth
    centre = eyes.mean(0) + uy * CENTRE_BELOW_EYES_PER_EYE_DISTANCE * distance
    side = EXTENT_PER_EYE_DISTANCE * distance
    return _rect_from_frame(centre, ux, uy, side, scale, vx_ratio, vy_ratio)


def rect_from_box(box_xywh, scale: float = RENDER_SCALE, vx_ratio: float = 0.0,
                  vy_ratio: float = RENDER_VY, eyes=None) -> CropRect:
    """A manual face box (x, y, w, h: eyebrows to chin) taken as the landmark extent; with
    ``eyes`` the crop is rotated so the eye line is horizontal."""
    x, y, w, h = (float(v) for v in box_xywh)
    ux = np.array([1.0, 0.0])
    if eyes is not None:
        eyes = np.asarray(eyes, np.float64).reshape(2, 2)
        d = eyes[1] - eyes[0]
        if np.linalg.norm(d) > 1e-3:
            ux = d / np.linalg.norm(d)
    uy = np.array([-ux[1], ux[0]])
    return _rect_from_frame(np.array([x + w / 2 - 0.5, y + h / 2 - 0.5]), ux, uy,
                            max(w, h), scale, vx_ratio, vy_ratio)


def whole_image_rect(height: int, width: int) -> CropRect:
    """The fallback: the largest centred square of the frame, upright."""
    return CropRect(np.array([(width - 1) / 2, (height - 1) / 2], np.float32),
                    np.float32(min(height, width)), 0.0)


def _rect_from_frame(centre, ux, uy, extent, scale, vx_ratio, vy_ratio) -> CropRect:
    side = extent * scale
    centre = centre + ux * vx_ratio * side + uy * vy_ratio * side
    angle = math.atan2(ux[1], ux[0])
    return CropRect(np.asarray(centre, np.float32), np.float32(side), angle)


def crop_matrices(rect: CropRect, dsize: int = RENDER_DSIZE, rotate: bool = True):
    """(M_o2c, M_c2o), both 3x3 float32: original->crop and its inverse (crop->original)."""
    s = dsize / np.float32(rect.size)
    t = np.float32(dsize / 2)
    cx, cy = np.float32(rect.center[0]), np.float32(rect.center[1])
    if rotate:
        # the reference multiplies float32 values by Python floats (rounded to float32)
        c, n = np.float32(math.cos(rect.angle)), np.float32(math.sin(rect.angle))
        m = np.array([[s * c, s * n, t - s * (c * cx + n * cy)],
                      [-s * n, s * c, t - s * (-n * cx + c * cy)]], dtype=np.float32)
    else:
        m = np.array([[s, 0, t - s * cx], [0, s, t - s * cy]], dtype=np.float32)
    o2c = np.vstack([m, np.array([0, 0, 1], dtype=np.float32)])
    return o2c, np.linalg.inv(o2c)


def warp_crop(image: np.ndarray, m_o2c: np.ndarray, dsize=RENDER_DSIZE,
              antialias: bool = True) -> np.ndarray:
    """The crop itself: cv2.warpAffine, bilinear, constant-0 border (as the reference).
    ``dsize`` is the side of a square crop or a (width, height) pair.

    When the crop shrinks the frame by more than 2x (huge frames), the frame is first
    reduced with INTER_AREA so the crop does not alias; the reference never meets this
    case because it limits sources to 1280 px.
    """
    out_size = (dsize, dsize) if np.isscalar(dsize) else tuple(int(v) for v in dsize)
    m = np.asarray(m_o2c, np.float64)[:2]
    shrink = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if antialias and shrink < 0.5:
        factor = 2.0 * shrink
        h, w = image.shape[:2]
        small_w, small_h = max(1, round(w * factor)), max(1, round(h * factor))
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        m = (np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(resize_matrix(w, h, small_w, small_h)))[:2]
        image = small
    return cv2.warpAffine(image, m, out_size, flags=cv2.INTER_LINEAR)


def resize_matrix(w: int, h: int, new_w: int, new_h: int) -> np.ndarray:
    """3x3 map of pixel centres from a w x h image to its cv2.resize to new_w x new_h."""
    fx, fy = new_w / w, new_h / h
    return np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 (or 2x3) affine matrix to (..., 2) points."""
    m = np.asarray(matrix)
    pts = np.asarray(points)
    return pts[..., :2] @ m[:2, :2].T + m[:2, 2]


def crop_inputs_256(crops512) -> torch.Tensor:
    """(N,512,512,3) uint8 crops (or float 0..1) -> (N,3,256,256) float32 in 0..1, the
    network input (INTER_AREA, /255, no mean/std), contiguous NCHW."""
    crops = crops512.cpu().numpy() if isinstance(crops512, torch.Tensor) else np.asarray(crops512)
    if crops.ndim == 3:
        crops = crops[None]
    small = np.stack([cv2.resize(c, (NETWORK_SIZE, NETWORK_SIZE), interpolation=cv2.INTER_AREA)
                      for c in crops])
    x = small.astype(np.float32) / 255 if small.dtype == np.uint8 else small.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(np.clip(x, 0, 1).transpose(0, 3, 1, 2)))
