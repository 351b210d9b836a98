"""Reference-exact paste-back of the original LivePortrait and Ditto code (numpy + cv2).

These reproduce the official outputs bit for bit (../shared/fidelity: LivePortrait case 7
and 8, Ditto ``putback``). They work on one frame at a time on the CPU; video goes through
the batched torch path in ``blend.py``, which uses the same templates and geometry.

Conventions: ``crop_to_frame`` is the 3x3 (or 2x3) matrix mapping crop pixel coordinates
to frame pixel coordinates (the originals' ``M_c2o``); pixel centres sit at integers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

import cv2
import numpy as np


# ---------------------------------------------------------------------------------------
# crop-space feather templates


@lru_cache(maxsize=8)
def lp_mask_template(size: int = 512) -> np.ndarray:
    """LivePortrait's ``mask_template.png`` regenerated: floor(255 * clip(1 - d/16, 0, 1))
    with d the Euclidean distance of pixel (x, y) to the square [16, 496]^2 (at 512).

    Defined against ``size`` rather than ``size - 1``, so it is slightly asymmetric
    (0 at x=0, 15 at x=511), exactly like the official PNG (spec liveportrait §1.10).
    """
    ramp = size / 32.0  # 16 px at 512: both the inset and the ramp width
    idx = np.arange(size, dtype=np.float64)
    out = np.maximum(np.maximum(ramp - idx, idx - (size - ramp)), 0.0)
    dist = np.sqrt(out[None, :] ** 2 + out[:, None] ** 2)
    mask = np.floor(255.0 * np.clip(1.0 - dist / ramp, 0.0, 1.0)).astype(np.uint8)
    mask.setflags(write=False)
    return mask


@lru_cache(maxsize=8)
def ditto_mask_template(size: int = 512, ratio: float = 0.9) -> np.ndarray:
    """Ditto's ``get_mask(size, size, ratio, ratio)`` as float32 (spec ditto §3.12).

    The border strips are ``linspace(0, 1, n)`` ramps toward the inside (n = 26 at 512,
    0.9); the corners are ``1 - clip(hypot(a, b), 0, 1)`` with a, b the float64
    ``linspace(1, 0, n)`` ramps toward the corner, clipped and cast to float32 *before*
    the ``1 -`` (that order is what makes it bit-exact).
    """
    n = (size - int(size * ratio)) // 2
    up = np.linspace(0.0, 1.0, n)
    down = up[::-1]
    mask = np.ones((size, size), np.float32)
    mask[n:size - n, :n] = up
    mask[n:size - n, size - n:] = down
    mask[:n, n:size - n] = up[:, None]
    mask[size - n:, n:size - n] = down[:, None]
    dist = np.clip(np.sqrt(down[:, None] ** 2 + down[None, :] ** 2), 0.0, 1.0)
    corner = np.float32(1.0) - dist.astype(np.float32)
    mask[:n, :n] = corner
    mask[:n, size - n:] = corner[:, ::-1]
    mask[size - n:, :n] = corner[::-1, :]
    mask[size - n:, size - n:] = corner[::-1, ::-1]
    mask.setflags(write=False)
    return mask


@dataclass(frozen=True)
class CropTemplate:
    """A crop-space feather mask and the square (in crop pixels at ``size``) where it is 1.

    ``flat`` is (lo, hi) as a fraction of ``size`` so it scales with the crop size.
    """

    name: str
    build: Callable[[int], np.ndarray]  # size -> float32 (size, size) in 0..1
    flat: tuple

    def flat_square(self, size: int) -> tuple:
        return self.flat[0] * size, self.flat[1] * size


def _lp_float(size: int) -> np.ndarray:
    return lp_mask_template(size).astype(np.float32) / 255.0


def _ditto_float(size: int) -> np.ndarray:
    return ditto_mask_template(size)


CROP_TEMPLATES = {
    # 16 px linear ramp outside the flat square [16, 496]^2 (at 512)
    "liveportrait": CropTemplate("liveportrait", _lp_float, (16 / 512, 496 / 512)),
    # 26 px ramp; value 1 on [25, 486]^2 (at 512, ratio 0.9)
    "ditto": CropTemplate("ditto", _ditto_float, (25 / 512, 486 / 512)),
}


# ---------------------------------------------------------------------------------------
# the original blends


def warp_to_frame(img: np.ndarray, crop_to_frame: np.ndarray, frame_hw: tuple,
                  dst: Optional[np.ndarray] = None) -> np.ndarray:
    """cv2.warpAffine exactly as both originals call it: bilinear, constant-0 border.
    ``dst``: an array of the result's shape and dtype to write into."""
    h, w = frame_hw
    m = np.asarray(crop_to_frame)[:2]
    return cv2.warpAffine(img, m, (int(w), int(h)), dst=dst, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def lp_prepare_paste_back(crop_to_frame: np.ndarray, frame_hw: tuple,
                          size: int = 512) -> np.ndarray:
    """LivePortrait ``prepare_paste_back``: the uint8 template warped into the frame,
    then /255 -> (H, W, 3) float32 (the official code warps 3 identical channels)."""
    warped = warp_to_frame(lp_mask_template(size), crop_to_frame, frame_hw)
    return np.repeat((warped.astype(np.float32) / 255.0)[..., None], 3, axis=2)


def lp_paste_back(crop_u8: np.ndarray, crop_to_frame: np.ndarray, frame_u8: np.ndarray,
                  mask_ori: np.ndarray) -> np.ndarray:
    """LivePortrait ``paste_back``: uint8 warp of the crop, float32 blend, truncation."""
    warped = warp_to_frame(crop_u8, crop_to_frame, frame_u8.shape[:2])
    out = mask_ori * warped + (1.0 - mask_ori) * frame_u8
    return np.clip(out, 0, 255).astype(np.uint8)


def lp_render_to_u8(image: np.ndarray) -> np.ndarray:
    """The decoder output (HWC float 0..1) as LivePortrait turns it into uint8: clip,
    x255, clip, *truncate* (not round)."""
    return np.clip(np.clip(image, 0.0, 1.0) * 255.0, 0, 255).astype(np.uint8)


def ditto_put_back(frame_u8: np.ndarray, render: np.ndarray, crop_to_frame: np.ndarray,
                   size: int = 512) -> np.ndarray:
    """Ditto ``PutBackNumpy``: float32 mask and render (0..255, not rounded) warped with
    cv2, every product/sum rounded to float32 separately, then truncated to uint8.

    The SDK's Cython loop may fuse multiply-adds (FMA) and come out 1 lower on rare
    pixels; the golden is this portable path.
    """
    hw = frame_u8.shape[:2]
    mask = ditto_warped_mask(crop_to_frame, hw, size)
    render_w = warp_to_frame(np.asarray(render, np.float32), crop_to_frame, hw)
    mask = mask[..., None]
    out = mask * render_w + (1 - mask) * frame_u8
    return np.clip(out, 0, 255).astype(np.uint8)


def ditto_warped_mask(crop_to_frame: np.ndarray, frame_hw: tuple, size: int = 512) -> np.ndarray:
    """Ditto's frame-space mask: clip(warpAffine(get_mask), 0, 1), (H, W) float32."""
    return warped_crop_mask("ditto", crop_to_frame, frame_hw, size)


def warped_crop_mask(template: str, crop_to_frame: np.ndarray, frame_hw: tuple,
                     size: int = 512) -> np.ndarray:
    """The official crop template in frame space, as the original of ``template`` makes
    it: (H, W) float32 0..1 (LivePortrait warps its uint8 PNG, Ditto its float mask)."""
    return template_weight(template, warp_to_frame(template_image(template, size),
                                                   crop_to_frame, frame_hw))


def template_image(template: str, size: int = 512) -> np.ndarray:
    """The crop template as the original of ``template`` warps it (uint8 or float32)."""
    return ditto_mask_template(size) if template == "ditto" else lp_mask_template(size)


def template_weight(template: str, warped: np.ndarray,
                    out: Optional[np.ndarray] = None) -> np.ndarray:
    """The warped :func:`template_image` -> float32 weight 0..1, as the original turns
    it into one (into ``out`` if given). Zero exactly where ``warped`` is."""
    if template == "ditto":
        return np.clip(warped, 0.0, 1.0, out=out)
    # LivePortrait: astype(float32) / 255, the same float32 division
    return np.divide(warped, np.float32(255.0), out=out, dtype=np.float32)
