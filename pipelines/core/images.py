"""The one conversion between ComfyUI's float images and uint8 pixels.

float -> uint8 rounds to nearest (half to even, as ``torch.round`` / ``np.rint``) after
clipping to 0..1; uint8 -> float divides by 255. Everything that converts (the video
writer, Face Register, previews, MuseTalk) uses these, so a value round-trips exactly.
Reference paths that reproduce an original's own truncation (LivePortrait's decoder
output, Ditto's putback) keep their rule in composite/reference.py.
"""
from __future__ import annotations

import numpy as np
import torch


def to_uint8(x):
    """float 0..1 (numpy or torch, any shape) -> uint8 of the same kind; uint8 passes."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.uint8:
            return x
        return torch.round(x.detach().float().clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(x.astype(np.float32, copy=False), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_float(x):
    """uint8 (numpy or torch) -> float32 0..1 of the same kind; float passes as float32."""
    if isinstance(x, torch.Tensor):
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    x = np.asarray(x)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
