"""Frame checks and sizing shared by every registration path.

* :func:`as_uint8_frames` turns ComfyUI IMAGE batches (float 0..1) or uint8 arrays into
  the contiguous RGB uint8 frames that OpenCV and MediaPipe need, and rejects anything
  else with a message saying what to do.
* :func:`check_resize` / :func:`resize_to_limit` / :func:`load_image` are Ditto's source
  sizing rule (long side limited to ``max_dim`` with Python rounding, then each side
  floored to even by *resizing*; LivePortrait instead truncates and crops).
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from ..core.errors import MediaError

CONVERT_HINT = ("convert it to RGB first (ComfyUI IMAGE batches are float32 RGB in 0..1; "
                "grayscale, RGBA and 16-bit images need converting upstream)")


class FrameReader:
    """Per-frame access to an image batch as contiguous RGB uint8, converting one frame at
    a time so a long float video is never duplicated in memory.

    Accepts (N,H,W,3) (or a single (H,W,3)) float 0..1 or uint8, numpy or torch; raises
    MediaError for anything else, naming the shape or dtype and what to do.
    """

    def __init__(self, frames):
        if isinstance(frames, torch.Tensor):
            frames = frames.detach().cpu()
            if frames.dtype in (torch.float16, torch.bfloat16):
                frames = frames.float()
            frames = frames.numpy()
        if not isinstance(frames, np.ndarray):
            raise MediaError(f"face registration needs an image batch, got {type(frames).__name__}")
        if frames.ndim == 3 and frames.shape[-1] == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            channels = {1: "grayscale", 2: "grayscale+alpha", 4: "RGBA"}.get(
                frames.shape[-1] if frames.ndim >= 3 else 1, "not an image batch")
            if frames.ndim == 3:  # (N,H,W): a batch of grayscale images
                channels = "grayscale"
            raise MediaError(f"face registration needs RGB frames shaped (N,H,W,3); got "
                             f"{tuple(frames.shape)} ({channels}); {CONVERT_HINT}")
        if 0 in frames.shape:
            raise MediaError(f"face registration got an empty image batch {tuple(frames.shape)}")
        if frames.dtype != np.uint8 and frames.dtype.kind != "f":
            raise MediaError(f"face registration needs float32 0..1 or uint8 frames; got "
                             f"{frames.dtype}; {CONVERT_HINT}")
        self.frames = frames

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple:
        """(H, W)"""
        return tuple(int(v) for v in self.frames.shape[1:3])

    def __getitem__(self, i: int) -> np.ndarray:
        frame = self.frames[i]
        if frame.dtype == np.uint8:
            return np.ascontiguousarray(frame)
        if not np.isfinite(frame).all():
            raise MediaError(f"frame {i} contains NaN or infinite values")
        top = float(frame.max())
        if top > 1.5:
            raise MediaError(f"float frames must be in 0..1 (ComfyUI IMAGE), got values up to "
                             f"{top:.1f} in frame {i}; divide 0..255 images by 255")
        # rint, not truncation: a uint8 PNG loaded as x/255 comes back bit-exact
        return np.rint(np.clip(frame, 0, 1) * 255).astype(np.uint8)


def as_uint8_frames(frames) -> np.ndarray:
    """All frames at once as (N,H,W,3) uint8 (see FrameReader)."""
    reader = FrameReader(frames)
    return np.stack([reader[i] for i in range(len(reader))])


def check_resize(h: int, w: int, max_dim: int, division: int = 2):
    """Ditto's ``check_resize``: (new_h, new_w, changed)."""
    new_h, new_w = h, w
    long_side = max(h, w)
    if max_dim > 0 and long_side > max_dim:
        if h >= w:
            new_h, new_w = max_dim, int(round(w * max_dim / h))
        else:
            new_h, new_w = int(round(h * max_dim / w)), max_dim
    new_h -= new_h % division
    new_w -= new_w % division
    return new_h, new_w, (new_h, new_w) != (h, w)


def resize_to_limit(image: np.ndarray, max_dim: int, division: int = 2) -> np.ndarray:
    """Ditto's source resize: the whole image is resampled (INTER_LINEAR) to the
    :func:`check_resize` size, even when only an odd side changes."""
    h, w = image.shape[:2]
    new_h, new_w, changed = check_resize(h, w, max_dim, division)
    if not changed:
        return image
    return cv2.resize(image, (new_w, new_h))


def load_image(path: str, max_dim: int = 1920) -> np.ndarray:
    """Ditto's ``load_image``: read, BGR->RGB, :func:`resize_to_limit`. (H,W,3) uint8."""
    if not os.path.isfile(path):
        raise MediaError(f"image file not found: {path}")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError(f"cannot read image {path} (not an image OpenCV can decode)")
    return resize_to_limit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_dim)
