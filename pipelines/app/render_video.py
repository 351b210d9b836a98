"""Keypoints -> MP4 without holding the video in memory (the command line's path).

Chunk by chunk: warp + decode (the renderer), paste back into the source frames (blend
mode and region), stream to the encoder. Only one chunk of frames exists at a time, so a
3-minute render takes the memory of a few seconds' worth.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from .. import composite
from ..core import media
from ..core.types import Keypoints, ModelBundle, Source


def blend_masks(source: Source, mode: str = "replace", region: str = "crop", alpha: Optional[float] = None,
                feather: Optional[float] = None, crop_edge: str = "liveportrait", device=None) -> torch.Tensor:
    """Per source frame (N,H,W): the render's weight for blend ``mode`` inside ``region``."""
    weight = composite.resolve_alpha(mode, alpha)
    return composite.build_masks(region, tuple(source.frames.shape[1:3]), source.crop_to_frame,
                                 source.landmarks, source.landmark_scheme, feather, device,
                                 alpha=weight, crop_template=crop_edge)


def iter_frames(source: Source, keypoints: Keypoints, renderer: ModelBundle, masks: torch.Tensor,
                chunk: int = 16, batch_size: int = 4, color_match: str = "off",
                progress: Optional[Callable[[int, int], None]] = None,
                check_interrupt: Optional[Callable[[], None]] = None):
    """Yield (B,H,W,3) float frames of the final video, chunk by chunk."""
    from ..liveportrait import render

    t = len(keypoints)
    index = keypoints.source_index.long()
    for s in range(0, t, chunk):
        sl = slice(s, min(t, s + chunk))
        rows = index[sl]
        f_s = source.appearance
        crops = render.render(renderer, f_s, keypoints.x_s[sl], keypoints.x_d[sl], batch_size,
                              check_interrupt=check_interrupt,
                              source_index=rows if f_s.shape[0] > 1 else None)
        yield composite.composite(crops, source.frames, source.crop_to_frame, masks, 1.0, color_match,
                                  renderer.device, check_interrupt=check_interrupt, source_index=rows)
        if progress is not None:
            progress(sl.stop, t)


def write(path: str, source: Source, keypoints: Keypoints, renderer: ModelBundle, audio: Optional[np.ndarray],
          sample_rate: Optional[int], mode: str = "replace", region: str = "crop", alpha: Optional[float] = None,
          feather: Optional[float] = None, crop_edge: str = "liveportrait", color_match: str = "off",
          crf: int = 19, preset: str = "medium", progress=None, check_interrupt=None) -> str:
    masks = blend_masks(source, mode, region, alpha, feather, crop_edge, renderer.device)
    frames = iter_frames(source, keypoints, renderer, masks, color_match=color_match,
                         progress=progress, check_interrupt=check_interrupt)
    return media.write_video(path, frames, keypoints.fps, audio, sample_rate, crf=crf, preset=preset,
                             check_interrupt=check_interrupt)
