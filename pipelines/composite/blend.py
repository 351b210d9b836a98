"""Blend masks in frame space and the batched torch paste-back used for video."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..core import images
from ..core.errors import ShapeError, TalkingHeadError
from ..core.runtime import CPU, RunContext
from .color import COLOR_MATCH, match_color
from .reference import CROP_TEMPLATES, warped_crop_mask
from .spec import BlendSpec
from .regions import (
    feather_ramp, landmark_planes, plane_distance, resolve_layout, square_planes, stack_planes)
from .warp import Roi, crop_roi, warp_crops

# Automatic feather (feather=None) for the landmark regions: the official template's
# 16 px ramp at crop resolution, converted to frame pixels with the crop's scale.
AUTO_FEATHER_CROP_PX = 16.0
# The crop size masks are made for unless told otherwise (every family renders 512 crops).
MASK_CROP_SIZE = 512


def _as_tensor(x, name: str, dtype=None) -> torch.Tensor:
    if x is None:
        raise ShapeError(f"composite: '{name}' is missing")
    if not isinstance(x, torch.Tensor):  # numpy: share memory unless read-only
        x = torch.from_numpy(np.require(np.asarray(x), requirements="W"))
    return x if dtype is None else x.to(dtype)


def _as_matrices(crop_to_frame) -> torch.Tensor:
    """(N, 3, 3) float64 on the CPU from (3,3), (N,3,3) or the 2x3 forms cv2 uses."""
    m = _as_tensor(crop_to_frame, "crop_to_frame", torch.float64).cpu()
    if m.shape[-2:] == (2, 3):
        m = torch.cat([m, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
                       .expand(*m.shape[:-2], 1, 3)], dim=-2)
    if m.shape[-2:] != (3, 3):
        raise ShapeError(f"crop_to_frame has shape {tuple(m.shape)}, expected (N, 3, 3)")
    return m.reshape(-1, 3, 3)


def _crop_scale(crop_to_frame: torch.Tensor) -> torch.Tensor:
    """Frame pixels per crop pixel, per frame (B,)."""
    return torch.linalg.det(crop_to_frame[:, :2, :2].to(torch.float64)).abs().sqrt()


def _feather_widths(feather: Optional[float], ctf: torch.Tensor) -> torch.Tensor:
    """Feather in frame px per frame (B,); None = AUTO_FEATHER_CROP_PX at crop scale."""
    if feather is None:
        return AUTO_FEATHER_CROP_PX * _crop_scale(ctf)
    return torch.full((ctf.shape[0],), float(feather))


def _anchors(ctf: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(B, 2) the crop centres in the frame, rounded: each frame's own origin for its
    plane distances (see regions.plane_distance)."""
    centre = torch.full((2, 1), crop_size / 2.0, dtype=torch.float64)
    m = ctf.to(torch.float64)
    return torch.round((m[:, :2, :2] @ centre)[..., 0] + m[:, :2, 2])


def _crop_weights(template: str, crop_size: int, ctf: torch.Tensor, roi: Roi, frame_hw: tuple,
                  feather: Optional[float], device) -> torch.Tensor:
    """The official feathered square warped into the ROI; feather > 0 additionally ramps
    the flat part inward from its edge over ``feather`` frame px (a softer, wider edge).
    On the CPU the warp is the original's own cv2 call (bit-exact masks); elsewhere a
    grid_sample with cv2's geometry (within the goldens' tolerance)."""
    spec = CROP_TEMPLATES[template]
    if torch.device(device).type == "cpu":
        weight = torch.from_numpy(np.stack([
            warped_crop_mask(template, m, frame_hw, crop_size)[roi.y0:roi.y1, roi.x0:roi.x1]
            for m in ctf.numpy()]))
    else:
        tmpl = torch.tensor(spec.build(crop_size), device=device)  # copy: cached array is read-only
        crops = tmpl[None, None].expand(ctf.shape[0], 1, crop_size, crop_size)
        weight = warp_crops(crops, ctf, roi)[:, 0].clamp(0.0, 1.0)
    if feather:
        lo, hi = spec.flat_square(crop_size)
        planes = stack_planes([square_planes(m, lo, hi) for m in ctf.numpy()])
        ramp = feather_ramp(plane_distance(planes, roi, device, _anchors(ctf, crop_size)),
                            _feather_widths(feather, ctf))
        weight = weight * ramp
    return weight


def _landmark_weights(region: str, landmarks: torch.Tensor, scheme: str, ctf: torch.Tensor,
                      crop_size: int, roi: Roi, feather: Optional[float], device) -> torch.Tensor:
    layout = resolve_layout(scheme, landmarks.shape[1])
    pts = landmarks.to(torch.float64).cpu().numpy()
    planes = stack_planes([landmark_planes(region, p, layout, m, crop_size)
                           for p, m in zip(pts, ctf.numpy())])
    return feather_ramp(plane_distance(planes, roi, device, _anchors(ctf, crop_size)),
                        _feather_widths(feather, ctf))


def build_masks(spec: BlendSpec, frame_hw: tuple, crop_to_frame, landmarks=None,
                scheme: str = "mediapipe478", ctx: RunContext = CPU, crop_size: int = MASK_CROP_SIZE,
                batch_size: int = 16) -> torch.Tensor:
    """Per-frame blend weight of the render in frame space: (N, H, W) float32 on the CPU,
    computed on ``ctx.device``.

    spec.region: "crop" (the official feathered crop square; ``spec.crop_edge`` picks the
        LivePortrait 16 px or the Ditto 26 px template), "face" (the landmark hull) or
        "lower_face" (the hull below the nose line). Landmark regions are clipped to the
        crop square and need ``landmarks`` (N, K, 2) in frame pixels.
    spec.feather: frame pixels of linear ramp inside the region's edge. None = automatic:
        16 crop px in frame px for the landmark regions, the bare official template for
        "crop" (bit-compatible with the originals); > 0 on "crop" widens its ramp inward.
    The mask is ``spec.weight`` times the region's 0..1 weight: exactly what the
    paste-back blends with.
    """
    region, feather, alpha = spec.region, spec.feather, spec.weight
    ctf = _as_matrices(crop_to_frame)
    if region != "crop":
        if landmarks is None:
            raise TalkingHeadError(f"blend region {region!r} needs face landmarks; connect a "
                                   "SOURCE with landmarks or use region 'crop'")
        landmarks = _as_tensor(landmarks, "landmarks")
        if landmarks.ndim != 3 or landmarks.shape[0] != ctf.shape[0] or landmarks.shape[2] != 2:
            raise ShapeError(f"landmarks have shape {tuple(landmarks.shape)}, expected "
                             f"({ctf.shape[0]}, K, 2) to match crop_to_frame")
    dev = ctx.device
    h, w = int(frame_hw[0]), int(frame_hw[1])
    out = torch.zeros(ctf.shape[0], h, w, dtype=torch.float32)
    for t0 in range(0, ctf.shape[0], batch_size):
        ctx.check()
        m = ctf[t0:t0 + batch_size]
        roi = crop_roi(m, crop_size, (h, w))
        if roi.empty:
            continue
        if region == "crop":
            weight = _crop_weights(spec.crop_edge, crop_size, m, roi, (h, w), feather, dev)
        else:
            weight = _landmark_weights(region, landmarks[t0:t0 + batch_size], scheme, m,
                                       crop_size, roi, feather, dev)
        out[t0:t0 + len(m), roi.y0:roi.y1, roi.x0:roi.x1] = (weight * float(alpha)).cpu()
    return out


def frame_index(n_out: int, n_src: int, source_index=None) -> torch.Tensor:
    """Source frame of each output frame: ``source_index``, else t (N == T) or 0 (N == 1)."""
    if source_index is not None:
        idx = _as_tensor(source_index, "source_index", torch.long).reshape(-1)
        if len(idx) != n_out:
            raise ShapeError(f"source_index has {len(idx)} entries for {n_out} rendered frames")
        if len(idx) and (idx.min() < 0 or idx.max() >= n_src):
            raise ShapeError(f"source_index points outside the {n_src} source frames")
        return idx
    if n_src not in (1, n_out):
        raise ShapeError(f"{n_out} rendered frames but {n_src} source frames; pass "
                         "source_index to say which source frame each output frame uses")
    return torch.arange(n_out) if n_src == n_out else torch.zeros(n_out, dtype=torch.long)


def _check_inputs(rendered, frames, ctf, mask) -> None:
    if rendered.ndim != 4 or rendered.shape[3] != 3 or rendered.shape[1] != rendered.shape[2]:
        raise ShapeError(f"rendered crops have shape {tuple(rendered.shape)}, "
                         "expected (T, S, S, 3)")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ShapeError(f"frames have shape {tuple(frames.shape)}, expected (N, H, W, 3) RGB")
    n = frames.shape[0]
    if ctf.shape[0] != n or mask.shape[0] != n:
        raise ShapeError(f"frames ({n}), crop_to_frame ({ctf.shape[0]}) and mask "
                         f"({mask.shape[0]}) must have one entry per source frame")
    if tuple(mask.shape[1:]) != tuple(frames.shape[1:3]):
        raise ShapeError(f"mask is {tuple(mask.shape[1:])} but frames are "
                         f"{tuple(frames.shape[1:3])}")


def paste_torch(rendered, frames, crop_to_frame, mask, index, color_match: str = "off",
                ctx: RunContext = CPU, batch_size: int = 8) -> torch.Tensor:
    """Paste rendered crops back into their frames with torch: (T, H, W, 3) float32 0..1 on
    the CPU, computed on ``ctx.device`` (the batched GPU path; also colour matching).

    out = w * warp(render) + (1 - w) * frame, the render warped with the crop -> frame
    matrix (grid_sample, cv2's geometry). rendered: (T, S, S, 3) float 0..1 or uint8.
    frames (N, H, W, 3) uint8 or float 0..1, crop_to_frame (N, 3, 3) and mask (N, H, W) are
    per source frame; output frame t uses source frame index[t] (see frame_index).
    ``color_match`` "rgb"/"lab" matches the render's per-channel mean/std to the frame's
    under the mask. Only one batch of frames lives on the device at a time.
    """
    if color_match not in COLOR_MATCH:
        raise TalkingHeadError(f"color_match must be one of {', '.join(COLOR_MATCH)}")
    rendered = images.to_float(_as_tensor(rendered, "rendered"))
    frames = _as_tensor(frames, "frames")
    ctf = _as_matrices(crop_to_frame)
    mask = _as_tensor(mask, "mask")
    mask = mask[..., 0] if mask.ndim == 4 and mask.shape[-1] == 1 else mask
    _check_inputs(rendered, frames, ctf, mask)
    dev = ctx.device
    n_out, crop_size = rendered.shape[0], rendered.shape[1]
    index = frame_index(n_out, frames.shape[0], index)
    out = torch.empty((n_out,) + tuple(frames.shape[1:]), dtype=torch.float32)
    for t0 in range(0, n_out, batch_size):
        ctx.check()
        idx = index[t0:t0 + batch_size]
        out[t0:t0 + len(idx)] = images.to_float(frames[idx])
        m = ctf[idx]
        roi = crop_roi(m, crop_size, tuple(frames.shape[1:3]))
        if not roi.empty:
            view = out[t0:t0 + len(idx), roi.y0:roi.y1, roi.x0:roi.x1]
            mask_roi = mask[:, roi.y0:roi.y1, roi.x0:roi.x1][idx]  # slice first: copy the ROI only
            view.copy_(_blend_roi(rendered[t0:t0 + len(idx)], view, m, mask_roi, roi,
                                  color_match, dev).cpu())
        ctx.report(t0 + len(idx), n_out)
    return out


def _blend_roi(render, frame_roi, ctf, mask_roi, roi: Roi, color_match, dev):
    """Blend one batch inside its ROI on the device: (B, h, w, 3)."""
    crops = render.to(dev, torch.float32).permute(0, 3, 1, 2)
    ones = torch.ones_like(crops[:, :1])
    warped = warp_crops(torch.cat([crops, ones], dim=1), ctf, roi).permute(0, 2, 3, 1)
    warped, coverage = warped[..., :3], warped[..., 3]
    frame = frame_roi.to(dev)
    weight = mask_roi.to(dev, torch.float32)
    # beyond the crop there is no render: a user mask reaching there keeps the frame
    weight = weight.clamp(0.0, 1.0) * (coverage > 0)
    if color_match != "off":
        warped = match_color(warped, frame, weight, color_match)
    return frame + weight[..., None] * (warped - frame)
