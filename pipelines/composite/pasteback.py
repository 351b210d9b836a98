"""The one paste-back every family uses: rendered crops into their source frames.

``blend_masks`` turns a :class:`BlendSpec` into per-source-frame weights (N,H,W) once;
``paste_back`` pastes a chunk of rendered crops with them and returns uint8 frames.

Two backends, one result within the goldens' tolerances:

* CPU without colour matching: :mod:`.paste` (cv2, bit-exact with the originals' own
  arithmetic). The crop goes in as its family's original hands it over: LivePortrait
  truncates the render to uint8 first, Ditto pastes the unrounded float render
  (``spec.crop_edge`` names the family). Plans are per source frame; pass a dict as
  ``plans`` to keep them from one chunk to the next.
* Otherwise (a GPU run, or colour matching): the batched torch path of :mod:`.blend`.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..core import images
from ..core.runtime import CPU, RunContext
from ..core.types import Source
from . import paste as cpu_paste
from .blend import MASK_CROP_SIZE, build_masks, frame_index, paste_torch
from .scratch import work_array
from .spec import BlendSpec


def blend_masks(source: Source, spec: BlendSpec, ctx: RunContext = CPU) -> torch.Tensor:
    """Per source frame (N,H,W) float32: the render's weight for ``spec``."""
    return build_masks(spec, tuple(source.frames.shape[1:3]), source.crop_to_frame,
                       source.landmarks, source.landmark_scheme, ctx)


class ChunkMasks:
    """Blend masks made on demand for the source frames a chunk uses, so a long video
    source never holds a mask for each of its frames (N x H x W floats) at once."""

    def __init__(self, source: Source, spec: BlendSpec, ctx: RunContext = CPU):
        self.source, self.spec, self.ctx = source, spec, ctx.with_progress(None)
        self.held: dict = {}

    def take(self, frames: list) -> dict:
        """{source frame: (H,W) mask} for ``frames``; masks of other frames are dropped."""
        need = [s for s in frames if s not in self.held]
        if need:
            src = self.source
            made = build_masks(self.spec, tuple(src.frames.shape[1:3]), src.crop_to_frame[need],
                               src.landmarks[need], src.landmark_scheme, self.ctx)
            self.held.update(zip(need, made))
        self.held = {s: self.held[s] for s in frames}
        return self.held

    def template(self, crop_size: int) -> Optional[str]:
        """The official crop template the masks are made of alone, if they are made for
        crops of ``crop_size``; else None."""
        return self.spec.bare_template if crop_size == MASK_CROP_SIZE else None


def paste_back(frames, crops, crop_to_frame, masks, index=None, spec: BlendSpec = BlendSpec(),
               ctx: RunContext = CPU, plans: Optional[dict] = None) -> np.ndarray:
    """(t,H,W,3) uint8: ``crops`` (t,S,S,3) float 0..1 or uint8 pasted into ``frames``
    (N,H,W,3) uint8 with per-source-frame ``crop_to_frame`` (N,3,3) and ``masks`` (N,H,W)
    or a :class:`ChunkMasks`; output frame i uses source frame ``index[i]`` (default: i,
    or 0 for one frame). ``plans``: a dict this call fills with the CPU plans of the
    source frames it used more than once (an image source, held or looped frames), for
    the next chunk of the same render (same frames, matrices and masks); plans of source
    frames this chunk did not use are dropped."""
    index = frame_index(int(crops.shape[0]), int(frames.shape[0]), index)
    used = sorted(set(index.tolist()))
    if ctx.device.type != "cpu" or spec.color_match != "off":
        if isinstance(masks, ChunkMasks):
            masks = masks.take(used)
        local = torch.as_tensor([used.index(s) for s in index.tolist()], dtype=torch.long)
        out = paste_torch(crops, torch.as_tensor(frames)[used], torch.as_tensor(crop_to_frame)[used],
                          torch.stack([torch.as_tensor(masks[s]) for s in used]), local,
                          spec.color_match, ctx.with_progress(None))
        return images.to_uint8(out).numpy()
    frames = images.to_uint8(torch.as_tensor(frames)).numpy()
    matrices = np.asarray(torch.as_tensor(crop_to_frame), dtype=np.float64)
    plans = {} if plans is None else plans
    crops = torch.as_tensor(crops).detach().cpu()
    plan = _planner(masks, used, int(crops.shape[1]), frames.shape[1:3])
    out = np.empty((len(index),) + frames.shape[1:], np.uint8)
    uses = np.bincount(index.numpy(), minlength=int(frames.shape[0]))
    for t, s in enumerate(index.tolist()):
        if t % 8 == 0:
            ctx.check()
        if s not in plans:
            plans[s] = plan(s, matrices[s])
        cpu_paste.paste(frames[s], _family_crop(crops[t], spec.crop_edge), plans[s], out=out[t])
        if uses[s] == 1:
            # a video source's frame used once: its plan (a MB or more of weights) goes
            # now, so that the next frame's plan reuses that memory; plans kept to the end
            # of the chunk would make the allocator hand it back to the OS, then fault it
            # in again page by page (~0.3 ms a 512x512 frame)
            del plans[s]
    for s in [k for k in plans if k not in used]:  # a video source moves on: keep memory flat
        del plans[s]
    return out


def _planner(masks, used: list, crop_size: int, frame_hw: tuple) -> Callable:
    """(source frame, matrix) -> its CPU paste plan. Masks that are a bare official
    template are planned from the template (:func:`paste.plan_template`: the same
    plan, without making the frame-size masks); others from their masks."""
    if isinstance(masks, ChunkMasks):
        template = masks.template(crop_size)
        if template is not None:
            alpha = masks.spec.weight
            return lambda s, matrix: cpu_paste.plan_template(matrix, template, frame_hw,
                                                             crop_size, alpha)
        masks = masks.take(used)

    def from_mask(s: int, matrix: np.ndarray):
        weight = torch.as_tensor(masks[s]).to(torch.float32).numpy()
        return cpu_paste.plan_paste(matrix, weight, crop_size)
    return from_mask


def _family_crop(crop: torch.Tensor, crop_edge: str) -> np.ndarray:
    """One crop as the family's original pastes it: uint8 as it is; float 0..1 truncated
    to uint8 (LivePortrait) or scaled to unrounded float32 0..255 (Ditto). Made one at a
    time in a work array: a chunk's worth would be tens of MB of float copies."""
    if crop.dtype == torch.uint8:
        return crop.numpy()
    values = crop.to(torch.float32).numpy()
    scaled = work_array("family_crop", values.shape, np.float32)
    np.clip(values, 0.0, 1.0, out=scaled)
    scaled *= np.float32(255.0)  # one float32 rounding, as the originals' * 255
    if crop_edge == "ditto":
        return scaled
    truncated = work_array("family_crop_u8", values.shape, np.uint8)
    np.copyto(truncated, scaled, casting="unsafe")  # the float -> uint8 cast truncates
    return truncated
