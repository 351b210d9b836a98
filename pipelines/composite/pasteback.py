"""The one paste-back every family uses: rendered crops into their source frames.

``blend_masks`` turns a :class:`BlendSpec` into per-source-frame weights (N,H,W) once;
``paste_back`` pastes a chunk of rendered crops with them and returns uint8 frames. It
runs the batched torch path on the run's device (GPU, or colour matching), and the CPU
path of :mod:`.paste` otherwise.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core import images
from ..core.runtime import CPU, RunContext
from ..core.types import Source
from .blend import build_masks, frame_index, paste_torch
from .spec import BlendSpec


def blend_masks(source: Source, spec: BlendSpec, ctx: RunContext = CPU) -> torch.Tensor:
    """Per source frame (N,H,W) float32: the render's weight for ``spec``."""
    return build_masks(spec, tuple(source.frames.shape[1:3]), source.crop_to_frame,
                       source.landmarks, source.landmark_scheme, ctx)


def paste_back(frames, crops, crop_to_frame, masks, index=None, color_match: str = "off",
               ctx: RunContext = CPU) -> np.ndarray:
    """(t,H,W,3) uint8: ``crops`` (t,S,S,3) float 0..1 or uint8 pasted into ``frames``
    (N,H,W,3) uint8 with per-source-frame ``crop_to_frame`` (N,3,3) and ``masks`` (N,H,W);
    output frame i uses source frame ``index[i]`` (default: i, or 0 for one frame)."""
    frames = torch.as_tensor(frames)
    index = frame_index(int(crops.shape[0]), int(frames.shape[0]), index)
    out = paste_torch(crops, frames, crop_to_frame, masks, index, color_match,
                      ctx.with_progress(None))
    return images.to_uint8(out).numpy()
