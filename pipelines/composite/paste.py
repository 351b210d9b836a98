"""CPU paste-back of rendered crops into frames, bit-exact with the cv2 reference paths.

out = trunc(w * warp(crop) + (1 - w) * frame), computed as ``reference.lp_paste_back``
(uint8 crop, warped as uint8) and ``reference.ditto_put_back`` (float 0..255 crop, warped
as float32) compute it, but only where it can change anything:

* :func:`plan_paste` (:mod:`.paste_plan`) does the per-source-frame work once: the
  frame box (ROI) where the weight is non-zero inside the crop footprint, and the
  weights there. :func:`plan_template` makes the same plan for an official template
  without a frame-size mask (a video source's per-frame plan).
* :func:`paste` per output frame: one cv2.warpAffine of the crop into the ROI's corner
  of the frame, then the blend inside the ROI only. The whole frame is only copied; it
  never goes through float. Each warp's source is first read in order, a line at a time
  (:func:`.scratch.warm`), which spares the warp's rotated reads most cache misses. The
  blend runs one of three ways, with the same result:

  - compiled (where numba is installed, :mod:`.jit`): the formula in one loop over the
    ROI, as Ditto's Cython blend does. Otherwise:
  - dense: the reference's float32 formula over the ROI (cv2 arithmetic, in
    cache-sized blocks of rows). Where the plan knows the ROI's core, a large
    axis-aligned box where w == 1, the core only takes the warped value (truncated:
    one pass instead of five) and only the strips around it are blended. A template
    plan gets its core without a search (from the template's flat square); a weight
    plan finds it on its second frame (an image source) and then also keeps the
    strips' 3-channel w and 1 - w. Otherwise (a weight plan's first frame) the whole
    ROI is blended, with weights made per block.
  - split: uint8 crops from a plan's second frame on (an image source): the ROI is
    split once into "interior" (w == 1: the warped crop is copied through a mask) and
    "band" (0 < w < 1: flat indices, w and 1 - w), and only the band is blended. For
    float crops this is not faster than dense (it truncates the whole ROI anyway).

Why it matches the reference bit for bit: the blend uses the reference's own float32
operations (product, product, sum, clip, truncate; cv2 and numpy round each product
and sum once, no fused multiply-add), and with w == 1 that sum is exactly the warped
value, with w == 0 exactly the frame's (so the split may copy instead of blending).
The warp is the same cv2.warpAffine call on a destination that starts at the frame's
top-left corner and reaches just past the ROI: cv2 derives every pixel's sample
position from its absolute (x, y), so that prefix is the full-frame warp's top-left
part, value for value. (Warping only the ROI with a shifted matrix rounds the sample
positions differently and flips rare float values.) The prefix is made a multiple of
64 columns wide, or the frame's full width, so its SIMD blocks and scalar tail are
those of the full-frame warp.

paste is not re-entrant within one thread (per-thread work arrays).
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from ..core.errors import ShapeError
from . import jit
from .paste_plan import BandSplit, PastePlan, plan_frames, plan_paste, plan_template
from .reference import warp_to_frame
from .scratch import warm, work_array

__all__ = ["PastePlan", "paste", "paste_frames", "plan_frames", "plan_paste", "plan_template"]

Array = np.ndarray

_BLOCK_VALUES = 1 << 17  # float32 values per dense block and array: 512 KB, cache-sized


def _as_crop(crop, size: int) -> Array:
    c = np.asarray(crop)
    if c.shape != (size, size, 3):
        raise ShapeError(f"crop has shape {c.shape}; this plan pastes ({size}, {size}, 3) "
                         "RGB crops")
    if c.dtype == np.uint8:
        return np.ascontiguousarray(c)
    if c.dtype.kind != "f":
        raise ShapeError(f"crop dtype {c.dtype}: pass uint8 or float 0..255 RGB")
    return np.ascontiguousarray(c, dtype=np.float32)  # as the Ditto reference warps it


def _check_frame(frame, plan: PastePlan) -> Array:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.shape != plan.frame_hw + (3,):
        raise ShapeError(f"frame is {f.shape} {f.dtype}; this plan pastes into "
                         f"{plan.frame_hw + (3,)} uint8 RGB frames (plan per frame size)")
    return np.ascontiguousarray(f)


def _output(out, frame: Array, written: Optional[tuple] = None) -> Array:
    """``out`` (or a new array) holding ``frame``, except inside ``written`` (y0, y1, x0,
    x1), a box the caller fills in full: copying it would only be overwritten."""
    if out is None:
        out = np.empty_like(frame)
    elif out.shape != frame.shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ShapeError(f"out must be a C-contiguous {frame.shape} uint8 array, got "
                         f"{out.shape} {out.dtype}")
    if out is frame:
        return out
    if written is None:
        np.copyto(out, frame)
        return out
    y0, y1, x0, x1 = written
    out[:y0], out[y1:] = frame[:y0], frame[y1:]
    out[y0:y1, :x0], out[y0:y1, x1:] = frame[y0:y1, :x0], frame[y0:y1, x1:]
    return out


def paste(frame_u8, crop, plan: PastePlan, out: Optional[Array] = None) -> Array:
    """One output frame: ``crop`` pasted into ``frame_u8`` with ``plan``.

    frame_u8: (H, W, 3) uint8. crop: (S, S, 3) uint8 (LivePortrait: warped as uint8) or
    float 0..255 (Ditto's unrounded render: warped as float32). out: optional
    C-contiguous (H, W, 3) uint8 to write into (may be ``frame_u8`` itself).
    Returns (H, W, 3) uint8: the frame where the weight is 0 or the crop does not reach,
    else trunc(clip(w * warp(crop) + (1 - w) * frame)) in the reference's float32.
    """
    frame = _check_frame(frame_u8, plan)
    crop = _as_crop(crop, plan.crop_size)
    if plan.empty:
        return _output(out, frame)
    reused = plan.memo.get("uses", 0) > 0
    plan.memo["uses"] = plan.memo.get("uses", 0) + 1
    compiled = jit.blend_kernel() is not None
    split = not compiled and reused and crop.dtype == np.uint8
    # the dense blend writes every ROI pixel; the split one only the band and interior
    out = _output(out, frame, written=None if split else plan.roi)
    rows, cols = plan.warp_hw
    # the warp onto the frame's top-left rows x cols (see the module's docstring)
    warm(crop)
    warped = warp_to_frame(crop, plan.matrix, (rows, cols),
                           work_array("warp", (rows, cols, 3), crop.dtype))
    if compiled and jit.blend(warped, frame, out, plan.weight, plan.roi[0], plan.roi[2]):
        return out
    if split:
        _blend_split(warped, frame, out, plan)
    else:  # also where the compiled blend failed: dense writes every ROI pixel again
        _blend_dense(warped, frame, out, plan, keep=reused)
    return out


def _blend_dense(warped: Array, frame: Array, out: Array, plan: PastePlan,
                 keep: bool) -> None:
    """The reference's formula on every ROI pixel: w == 1 gives the warped value and
    w == 0 the frame's exactly. Where the plan knows its core (found on its second
    frame, or given by a template plan), the core only takes the warped value and the
    strips around it are blended. ``keep`` (a plan's later frames): the strips' 3-channel
    w and 1 - w are made once and kept in the plan; otherwise they are made per block."""
    y0, y1, x0, x1 = plan.roi
    if not keep and not plan.core_is_cheap:  # a weight plan's first frame: no search
        box = (slice(y0, y1), slice(x0, x1))
        _blend_box(warped[box], frame[box], out[box], plan.weight, None)
        return
    if "strips" not in plan.memo:
        plan.memo["strips"] = _strips(plan)
    if keep and "w3" not in plan.memo:
        kept = []
        for r0, r1, c0, c1 in plan.memo["strips"]:
            w3 = _as_channels(plan.weight[r0:r1, c0:c1])
            kept.append((w3, cv2.subtract(1.0, w3)))  # one float32 rounding, as (1 - w)
        plan.memo["w3"] = kept
    weights = plan.memo["w3"] if keep else [None] * len(plan.memo["strips"])
    for (r0, r1, c0, c1), kept in zip(plan.memo["strips"], weights):
        box = (slice(y0 + r0, y0 + r1), slice(x0 + c0, x0 + c1))
        _blend_box(warped[box], frame[box], out[box], plan.weight[r0:r1, c0:c1], kept)
    r0, r1, c0, c1 = plan.core
    if r1 > r0:
        box = (slice(y0 + r0, y0 + r1), slice(x0 + c0, x0 + c1))
        _truncate(warped[box], out[box])


def _truncate(values: Array, out: Array) -> None:
    """out = trunc(clip(values, 0, 255)) for float32 (or uint8) values: the reference's
    last two steps, and the whole blend where w == 1."""
    # the float -> uint8 cast truncates; it needs no clip for values in (-1, 256),
    # which a blend of a crop in 0..255 always gives: check (one fast pass) first
    lo, hi, _, _ = cv2.minMaxLoc(values.reshape(len(values), -1))
    if -1.0 < lo and hi < 256.0:
        np.copyto(out, values, casting="unsafe")
    else:
        np.clip(values, 0.0, 255.0, out=out, casting="unsafe")


def _strips(plan: PastePlan) -> list:
    """ROI-local boxes (r0, r1, c0, c1) covering the ROI except its core: the full-width
    rows above and below the core, the columns left and right of it."""
    h, n = plan.weight.shape
    r0, r1, c0, c1 = plan.core
    if r1 <= r0:
        return [(0, h, 0, n)]
    boxes = [(0, r0, 0, n), (r1, h, 0, n), (r0, r1, 0, c0), (r0, r1, c1, n)]
    return [b for b in boxes if b[1] > b[0] and b[3] > b[2]]


def _blend_box(warped: Array, frame: Array, out: Array, weight: Array,
               kept: Optional[tuple]) -> None:
    """trunc(clip(w * warped + (1 - w) * frame)) in float32 on one box, in blocks of
    rows that stay in the CPU cache between the five passes. cv2's float32 products
    and sum round each result once, as numpy does in the reference. ``kept``: the
    box's (w3, 1 - w3), else made per block from ``weight``."""
    rows, cols = weight.shape
    step = max(8, _BLOCK_VALUES // (3 * cols))
    shape = (min(step, rows), cols, 3)
    mix, rest = work_array("mix3", shape, np.float32), work_array("rest3", shape, np.float32)
    for r0 in range(0, rows, step):
        r1 = min(r0 + step, rows)
        n = r1 - r0
        if kept is not None:
            w3, iw3 = kept[0][r0:r1], kept[1][r0:r1]
        else:
            w3 = _as_channels(weight[r0:r1], work_array("w3", shape, np.float32)[:n])
            iw3 = cv2.subtract(1.0, w3, dst=work_array("iw3", shape, np.float32)[:n])
        a, b = mix[:n], rest[:n]
        cv2.multiply(warped[r0:r1], w3, dst=a, dtype=cv2.CV_32F)
        cv2.multiply(frame[r0:r1], iw3, dst=b, dtype=cv2.CV_32F)
        cv2.add(a, b, dst=a)
        _truncate(a, out[r0:r1])


def _as_channels(weight: Array, dst: Optional[Array] = None) -> Array:
    """(rows, cols) -> (rows, cols, 3) float32, the weight repeated per channel."""
    if not weight.flags.c_contiguous:  # cv2.merge is ~10x slower on a strided plane
        plane = work_array("w1", weight.shape, np.float32)
        np.copyto(plane, weight)
        weight = plane
    return cv2.merge([weight] * 3, dst=dst)


def _blend_split(warped: Array, frame: Array, out: Array, plan: PastePlan) -> None:
    """uint8 crops: the band blended value by value, the interior copied through a
    mask (w == 1: the reference's sum is the warped value itself)."""
    split = plan.split()
    if len(split.band_w):
        _blend_band(warped.reshape(-1), frame.reshape(-1), out.reshape(-1), split)
    if split.interior is not None:
        y0, y1, x0, x1 = plan.roi
        cv2.copyTo(warped[y0:y1, x0:x1], split.interior, out[y0:y1, x0:x1])


def _blend_band(warped: Array, frame: Array, out: Array, split: BandSplit) -> None:
    """The reference's float32 blend on the band: each product and the sum rounded to
    float32 on their own (no fused multiply-add), truncated. With uint8 inputs and
    0 <= w <= 1 the sum stays below 256: no clip needed."""
    n = len(split.band_w)
    mix, rest = work_array("mix", (n,), np.float32), work_array("rest", (n,), np.float32)
    np.multiply(np.take(warped, split.band_warp, out=work_array("a", (n,), np.uint8)),
                split.band_w, out=mix)
    np.multiply(np.take(frame, split.band_frame, out=work_array("b", (n,), np.uint8)),
                split.band_iw, out=rest)
    mix += rest
    result = work_array("result", (n,), np.uint8)
    np.copyto(result, mix, casting="unsafe")  # the float -> uint8 cast truncates
    out[split.band_frame] = result


def paste_frames(frames, crops, plans: Sequence[PastePlan], index=None,
                 out: Optional[Array] = None) -> Array:
    """A chunk of output frames: crop t pasted into ``frames[index[t]]`` with
    ``plans[index[t]]`` -> (T, H, W, 3) uint8.

    frames: (N, H, W, 3) uint8 (or a list of N such frames) with one plan each; crops:
    (T, S, S, 3) uint8 or float 0..255; index: (T,) source frame per output frame,
    default t (N == T) or 0 (N == 1). out: optional (T, H, W, 3) uint8 to fill.
    """
    n_src, n_out = len(frames), len(crops)
    if len(plans) != n_src:
        raise ShapeError(f"{len(plans)} paste plans for {n_src} source frames: "
                         "plan each source frame once")
    index = _frame_index(n_out, n_src, index)
    if n_out == 0:
        return np.empty((0,) + tuple(plans[0].frame_hw if plans else (0, 0)) + (3,), np.uint8)
    hw = plans[index[0]].frame_hw
    if out is None:
        out = np.empty((n_out,) + hw + (3,), np.uint8)
    elif out.shape[:1] != (n_out,):
        raise ShapeError(f"out holds {out.shape[0]} frames for {n_out} crops")
    for t, s in enumerate(index):
        paste(frames[s], crops[t], plans[s], out=out[t])
    return out


def _frame_index(n_out: int, n_src: int, index) -> Array:
    if index is not None:
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(idx) != n_out:
            raise ShapeError(f"index has {len(idx)} entries for {n_out} crops")
        if len(idx) and (idx.min() < 0 or idx.max() >= n_src):
            raise ShapeError(f"index points outside the {n_src} source frames")
        return idx
    if n_src not in (1, n_out):
        raise ShapeError(f"{n_out} crops but {n_src} source frames; pass index to say "
                         "which source frame each crop goes into")
    return np.arange(n_out) if n_src == n_out else np.zeros(n_out, np.int64)
