"""CPU paste-back of rendered crops into frames, bit-exact with the cv2 reference paths.

out = trunc(w * warp(crop) + (1 - w) * frame), computed as ``reference.lp_paste_back``
(uint8 crop, warped as uint8) and ``reference.ditto_put_back`` (float 0..255 crop, warped
as float32) compute it, but only where it can change anything:

* :func:`plan_paste` does the per-source-frame work once: the frame box (ROI) where the
  weight is non-zero inside the crop footprint, and the weights there.
* :func:`paste` per output frame: one cv2.warpAffine of the crop into the ROI's corner
  of the frame, then the blend inside the ROI only. The whole frame is only copied; it
  never goes through float. The blend runs one of two ways, with the same result:

  - dense: the reference's float32 formula over the ROI (cv2 arithmetic, in
    cache-sized blocks of rows). No set up, so this is what a plan's first frame uses
    (a video source: every frame). From a plan's second frame on, float crops skip the
    ROI's core, the largest axis-aligned box where w == 1 (found then), which only
    takes the warped value (clipped and truncated: one pass instead of five), and
    blend the strips around it with the 3-channel w and 1 - w kept in the plan.
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

The crop footprint (where bilinear sampling reaches the crop at all) is computed
analytically, widened by FOOTPRINT_SLACK crop px so that it holds every pixel cv2
covers; pixels outside it keep the frame whatever their weight. A reference mask is 0
wherever cv2 covers nothing, so reference results are unaffected.

A plan holds no frame or crop, is read-only once built and can be shared by every
output frame that uses its source frame (for an image source: all of them). paste is
not re-entrant within one thread (per-thread work arrays).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from ..core.errors import ShapeError

# The prefix warp's width is rounded up to this many columns (or to the frame width):
# a multiple of every SIMD block width cv2 uses (8 to 64 pixels per iteration).
_COLUMN_BLOCK = 64
# Crop-pixel margin around the footprint: far above cv2's float32 position error
# (~1e-4 px for 4K frames), far below a pixel.
FOOTPRINT_SLACK = 0.01

Array = np.ndarray


@dataclass(frozen=True)
class PastePlan:
    """Everything about one (source frame, crop placement, weight) that does not change
    from one output frame to the next. Build it with :func:`plan_paste`."""

    frame_hw: tuple          # (H, W) of the frames it pastes into
    crop_size: int           # S of the (S, S, 3) crops it pastes
    matrix: Array            # (2, 3) crop -> frame, as handed to cv2.warpAffine
    roi: tuple               # (y0, y1, x0, x1): where the render has weight; empty if none
    warp_hw: tuple           # (rows, cols) of the prefix warp, covering the ROI
    weight: Array            # (y1-y0, x1-x0) float32 in 0..1, 0 where the crop is not
    # filled on use: "uses" (frames pasted); from the second, "split" (a BandSplit, for
    # uint8 crops) or "core", "strips" and "w3" (float crops: (w3, 1 - w3) per strip)
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """Nothing of the render shows: paste returns the frame unchanged."""
        y0, y1, x0, x1 = self.roi
        return y1 <= y0 or x1 <= x0

    @property
    def core(self) -> tuple:
        """ROI-local (r0, r1, c0, c1) box where the weight is 1, (0, 0, 0, 0) if none
        worth it (found on first use, then kept)."""
        if "core" not in self.memo:
            self.memo["core"] = _core_box(self.weight)
        return self.memo["core"]

    def split(self) -> "BandSplit":
        """The interior / band split of the ROI (built on first call, then kept)."""
        if "split" not in self.memo:
            self.memo["split"] = _split(self)
        return self.memo["split"]


@dataclass(frozen=True)
class BandSplit:
    interior: Optional[Array]  # (y1-y0, x1-x0) uint8, 1 where w == 1; None if nowhere
    band_warp: Array         # flat indices into the (rows, cols, 3) warp, per channel
    band_frame: Array        # the same values' flat indices into the (H, W, 3) frame
    band_w: Array            # float32 w per index
    band_iw: Array           # float32 (1 - w) per index, rounded as the reference does

    @property
    def band_pixels(self) -> int:
        return len(self.band_w) // 3


# ---------------------------------------------------------------------------------------
# planning


def _as_matrix(crop_to_frame) -> Array:
    m = np.asarray(crop_to_frame)
    if m.shape not in ((2, 3), (3, 3)):
        raise ShapeError(f"crop_to_frame has shape {m.shape}; pass the (3, 3) or (2, 3) "
                         "crop -> frame matrix of one frame")
    if not np.isfinite(m).all():
        raise ShapeError("crop_to_frame has NaN or infinite entries; check the face "
                         "tracking of this frame")
    # cv2 converts the matrix to float64 itself; float32 inputs keep their exact values
    return np.ascontiguousarray(m[:2], dtype=np.float64)


def _as_weight(weight) -> Array:
    w = np.asarray(weight)
    if w.ndim == 3 and w.shape[2] in (1, 3):
        w = w[..., 0]  # the LivePortrait mask repeats one plane over 3 channels
    if w.ndim != 2:
        raise ShapeError(f"weight has shape {np.shape(weight)}; pass one (H, W) mask per "
                         "frame, 0..1 = how much of the render shows")
    return np.asarray(w, dtype=np.float32)


def _crop_box(matrix: Array, crop_size: int, frame_hw: tuple) -> tuple:
    """Frame box (y0, y1, x0, x1) of every pixel whose bilinear sample can touch the crop:
    sample positions in the open square (-1, S)^2, plus a pixel for rounding."""
    lo, hi = -1.0, float(crop_size)
    corners = np.array([[lo, lo, 1.0], [hi, lo, 1.0], [lo, hi, 1.0], [hi, hi, 1.0]])
    pts = corners @ matrix.T
    h, w = frame_hw
    x0 = max(int(np.floor(pts[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 2, int(w))
    y1 = min(int(np.ceil(pts[:, 1].max())) + 2, int(h))
    return y0, max(y1, y0), x0, max(x1, x0)


def _footprint(matrix: Array, crop_size: int, box: tuple) -> Array:
    """(rows, cols) bool of the box: True where the crop may show.

    Bilinear sampling reaches the crop from positions in the open square (-1, S)^2;
    cv2 computes positions in float32, so the square is widened by FOOTPRINT_SLACK px
    to keep every pixel cv2 can cover (a reference mask is 0 wherever cv2 covers
    nothing, so the slack never changes a reference result). Per row the footprint is
    one interval (the square's image is convex): one comparison per pixel, no warp.
    """
    y0, y1, x0, x1 = box
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]  # frame -> crop, float64
    ys = np.arange(y0, y1, dtype=np.float64)
    lo, hi = -1.0 - FOOTPRINT_SLACK, crop_size + FOOTPRINT_SLACK
    left = np.full(len(ys), -np.inf)
    right = np.full(len(ys), np.inf)
    for a, b, c in inv:  # lo < a*x + (b*y + c) < hi, solved for x on each row
        rest = b * ys + c
        if a == 0.0:
            inside = (rest > lo) & (rest < hi)
            left[~inside], right[~inside] = np.inf, -np.inf
            continue
        e1, e2 = (lo - rest) / a, (hi - rest) / a
        left = np.maximum(left, np.minimum(e1, e2))
        right = np.minimum(right, np.maximum(e1, e2))
    # columns kl <= c < kl + n of the box, as one unsigned comparison per pixel
    kl = np.clip(np.ceil(left - x0), 0, x1 - x0)
    n = np.clip(np.floor(right - x0) + 1, 0, x1 - x0) - kl
    signed, unsigned = (np.int16, np.uint16) if x1 - x0 < 2 ** 15 else (np.int32, np.uint32)
    cols = np.arange(x1 - x0, dtype=signed)
    off = (cols - kl.astype(signed)[:, None]).view(unsigned)
    return off < np.maximum(n, 0).astype(unsigned)[:, None]


def _prefix_cols(x1: int, width: int) -> int:
    """Warp width covering column x1 - 1 whose SIMD layout is the full-frame warp's."""
    cols = -(-x1 // _COLUMN_BLOCK) * _COLUMN_BLOCK
    return cols if cols <= width - width % _COLUMN_BLOCK else width


def _warp_prefix(img: Array, matrix: Array, rows: int, cols: int,
                 dst: Optional[Array] = None) -> Array:
    """cv2.warpAffine as the references call it, onto the frame's top-left rows x cols."""
    return cv2.warpAffine(img, matrix, (cols, rows), dst=dst, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _empty_plan(frame_hw, crop_size, matrix) -> PastePlan:
    return PastePlan(tuple(frame_hw), crop_size, matrix, (0, 0, 0, 0), (0, 0),
                     np.zeros((0, 0), np.float32))


def plan_paste(crop_to_frame, weight, crop_size: int = 512) -> PastePlan:
    """The per-source-frame part of :func:`paste`.

    crop_to_frame: (3, 3) or (2, 3) crop pixel -> frame pixel matrix (the originals'
        ``M_c2o``). weight: (H, W) float32 frame-space weight of the render, 0..1 (also
        (H, W, 1) / (H, W, 3) with equal channels, as LivePortrait's ``mask_ori``);
        values outside 0..1 are clipped. Pixels the crop cannot reach (sample position
        more than FOOTPRINT_SLACK crop px outside the crop) keep the frame whatever
        their weight.
    """
    matrix = _as_matrix(crop_to_frame)
    crop_size = int(crop_size)
    if crop_size < 2:
        raise ShapeError(f"crop_size must be at least 2, got {crop_size}")
    w_full = _as_weight(weight)
    frame_hw = tuple(int(v) for v in w_full.shape)
    by0, by1, bx0, bx1 = _crop_box(matrix, crop_size, frame_hw)
    if by1 <= by0 or bx1 <= bx0:
        return _empty_plan(frame_hw, crop_size, matrix)

    reach = _footprint(matrix, crop_size, (by0, by1, bx0, bx1))
    w = w_full[by0:by1, bx0:bx1] * reach  # float32: the weight, 0 where the crop is not
    np.clip(w, 0.0, 1.0, out=w)

    # the box of the non-zero weights (cv2's is 3-4x faster than numpy's any())
    c, r, n_cols, n_rows = cv2.boundingRect((w != 0).view(np.uint8))
    if n_rows == 0 or n_cols == 0:
        return _empty_plan(frame_hw, crop_size, matrix)
    w = np.ascontiguousarray(w[r:r + n_rows, c:c + n_cols])
    y0, y1 = by0 + r, by0 + r + n_rows
    x0, x1 = bx0 + c, bx0 + c + n_cols
    warp_hw = (y1, _prefix_cols(x1, frame_hw[1]))
    return PastePlan(frame_hw=frame_hw, crop_size=crop_size, matrix=matrix,
                     roi=(y0, y1, x0, x1), warp_hw=warp_hw, weight=w)


# Row ranges of the core search start and end on multiples of ROI rows / _CORE_STEPS
# (then grow row by row): an exact search would cost O(rows^2) per plan.
_CORE_STEPS = 64
# A core under this share of the ROI is not worth splitting the blend into strips for.
_CORE_MIN_SHARE = 0.125


def _core_box(w: Array) -> tuple:
    """ROI-local (r0, r1, c0, c1) of a large axis-aligned box where w == 1 (the rendered
    face's inside, where the blend takes the warped value); (0, 0, 0, 0) if too small.

    Per row, the w == 1 pixels form one run [first, last) or the row is left out. The
    box is the largest over row ranges of (rows) x (smallest last - largest first),
    searched on blocks of rows, then grown by the neighbouring rows that hold it.
    """
    h, n = w.shape
    full = w == 1.0
    # numpy's argmax is fast on bool rows only; cv2 mirrors and counts them 10-20x
    # faster than numpy's reversed view and count_nonzero
    as_u8 = full.view(np.uint8)
    first = np.argmax(full, axis=1)
    last = n - np.argmax(cv2.flip(as_u8, 1).view(bool), axis=1)
    run = cv2.reduce(as_u8, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0]
    ok = (run > 0) & (run == last - first)
    left, right = np.where(ok, first, n), np.where(ok, last, 0)
    k = -(-h // _CORE_STEPS)
    starts = np.arange(0, h, k)
    blk_left = np.maximum.reduceat(left, starts)
    blk_right = np.minimum.reduceat(right, starts)
    nb = len(starts)
    upper = np.arange(nb)[None, :] >= np.arange(nb)[:, None]  # block a .. block b
    lo = np.maximum.accumulate(np.where(upper, blk_left[None, :], 0), axis=1)
    hi = np.minimum.accumulate(np.where(upper, blk_right[None, :], n), axis=1)
    ends = np.minimum(starts + k, h)
    rows = ends[None, :] - starts[:, None]
    area = np.where(upper, rows * np.maximum(hi - lo, 0), 0)
    a, b = np.unravel_index(int(np.argmax(area)), area.shape)
    if area[a, b] < _CORE_MIN_SHARE * h * n:
        return (0, 0, 0, 0)
    c0, c1 = int(lo[a, b]), int(hi[a, b])
    holds = (left <= c0) & (right >= c1)
    r0, r1 = int(starts[a]), int(ends[b])
    while r0 > 0 and holds[r0 - 1]:
        r0 -= 1
    while r1 < h and holds[r1]:
        r1 += 1
    # the block search took the blocks' widest first / narrowest last: the rows kept
    # may allow a wider box
    return (r0, r1, int(left[r0:r1].max()), int(right[r0:r1].min()))


def _split(plan: PastePlan) -> BandSplit:
    w = plan.weight
    y0, _, x0, _ = plan.roi
    interior = w == 1.0
    band = (w > 0.0) & ~interior
    pos, band_warp, band_frame = _band_indices(band, (y0, x0), plan.warp_hw[1],
                                               plan.frame_hw[1])
    bw = np.repeat(w.reshape(-1)[pos], 3)
    return BandSplit(interior=interior.view(np.uint8) if interior.any() else None,
                     band_warp=band_warp, band_frame=band_frame, band_w=bw,
                     band_iw=np.float32(1.0) - bw)  # float32, as the references' (1 - mask)


def _band_indices(band: Array, origin: tuple, warp_cols: int, frame_cols: int) -> tuple:
    """ROI-local flat positions of the band pixels, and their flat per-channel indices
    into the warp and into the frame.

    Built from the ROI-local flat positions plus a per-row offset (np.repeat by the
    row counts): 2-D np.nonzero or a division would cost more than the paste itself.
    """
    h, w = band.shape
    pos = np.flatnonzero(band)
    per_row = np.diff(np.searchsorted(pos, np.arange(h + 1) * w))
    rows = np.arange(h, dtype=np.intp) + origin[0]
    # ROI-local r * w + c -> (r + y0) * cols + (c + x0), one offset per row
    to_warp = pos + np.repeat(rows * (warp_cols - w) + origin[0] * w + origin[1], per_row)
    to_frame = to_warp + np.repeat(rows * (frame_cols - warp_cols), per_row)
    return pos, _per_channel(to_warp), _per_channel(to_frame)


def _per_channel(pixels: Array) -> Array:
    """Pixel indices of an (.., 3) array -> the indices of their 3 values (a broadcast
    (n, 1) + (3,) costs 3x more: numpy's inner loop would be 3 long)."""
    idx = np.repeat(pixels * 3, 3)
    per = idx.reshape(-1, 3)
    per[:, 1] += 1
    per[:, 2] += 2
    return idx


# ---------------------------------------------------------------------------------------
# pasting

_scratch = threading.local()
_SCRATCH_MAX_BYTES = 64 << 20  # larger work arrays (4K float warps) are not kept
_BLOCK_VALUES = 1 << 17  # float32 values per dense block and array: 512 KB, cache-sized


def _buffer(name: str, shape: tuple, dtype) -> Array:
    """A per-thread work array reused between calls (grown when too small): fresh
    multi-MB arrays would cost more in page faults than the work done in them."""
    pool = _scratch.__dict__.setdefault("pool", {})
    size = math.prod(shape)
    flat = pool.get((name, dtype))  # dtype as given: a numpy type or dtype, both hash
    if flat is None or flat.size < size:
        flat = np.empty(size, dtype)
        if flat.nbytes <= _SCRATCH_MAX_BYTES:
            pool[(name, dtype)] = flat
    return flat[:size].reshape(shape)


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
    split = reused and crop.dtype == np.uint8
    # the dense blend writes every ROI pixel; the split one only the band and interior
    out = _output(out, frame, written=None if split else plan.roi)
    rows, cols = plan.warp_hw
    warped = _warp_prefix(crop, plan.matrix, rows, cols,
                          _buffer("warp", (rows, cols, 3), crop.dtype))
    if split:
        _blend_split(warped, frame, out, plan)
    else:
        _blend_dense(warped, frame, out, plan, keep=reused)
    return out


def _blend_dense(warped: Array, frame: Array, out: Array, plan: PastePlan,
                 keep: bool) -> None:
    """The reference's formula on every ROI pixel: w == 1 gives the warped value and
    w == 0 the frame's exactly. ``keep`` (a plan's later frames): the core only takes
    the warped value, the strips around it are blended with their 3-channel w and
    1 - w, made once and kept in the plan. Otherwise (a plan's first frame, no set up)
    the whole ROI is blended with weights made per block."""
    y0, y1, x0, x1 = plan.roi
    if not keep:
        box = (slice(y0, y1), slice(x0, x1))
        _blend_box(warped[box], frame[box], out[box], plan.weight, None)
        return
    if "w3" not in plan.memo:
        strips = _strips(plan)
        kept = []
        for r0, r1, c0, c1 in strips:
            w3 = cv2.merge([plan.weight[r0:r1, c0:c1]] * 3)
            kept.append((w3, cv2.subtract(1.0, w3)))  # one float32 rounding, as (1 - w)
        plan.memo.update(strips=strips, w3=kept)
    for (r0, r1, c0, c1), weights in zip(plan.memo["strips"], plan.memo["w3"]):
        box = (slice(y0 + r0, y0 + r1), slice(x0 + c0, x0 + c1))
        _blend_box(warped[box], frame[box], out[box], plan.weight[r0:r1, c0:c1], weights)
    r0, r1, c0, c1 = plan.core
    if r1 > r0:
        box = (slice(y0 + r0, y0 + r1), slice(x0 + c0, x0 + c1))
        _take_warped(warped[box], out[box])


def _take_warped(warped: Array, out: Array) -> None:
    """out = trunc(clip(warped, 0, 255)) for a float warp: the blend where w == 1."""
    # the float -> uint8 cast truncates; it needs no clip for values in (-1, 256),
    # which a crop in 0..255 always warps to: check (one fast pass) before clipping
    lo, hi, _, _ = cv2.minMaxLoc(warped.reshape(len(warped), -1))
    if -1.0 < lo and hi < 256.0:
        np.copyto(out, warped, casting="unsafe")
    else:
        np.clip(warped, 0.0, 255.0, out=out, casting="unsafe")


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
    mix, rest = _buffer("mix3", shape, np.float32), _buffer("rest3", shape, np.float32)
    for r0 in range(0, rows, step):
        r1 = min(r0 + step, rows)
        n = r1 - r0
        if kept is not None:
            w3, iw3 = kept[0][r0:r1], kept[1][r0:r1]
        else:
            w3 = cv2.merge([weight[r0:r1]] * 3, dst=_buffer("w3", shape, np.float32)[:n])
            iw3 = cv2.subtract(1.0, w3, dst=_buffer("iw3", shape, np.float32)[:n])
        a, b = mix[:n], rest[:n]
        cv2.multiply(warped[r0:r1], w3, dst=a, dtype=cv2.CV_32F)
        cv2.multiply(frame[r0:r1], iw3, dst=b, dtype=cv2.CV_32F)
        cv2.add(a, b, dst=a)
        np.clip(a, 0.0, 255.0, out=a)  # in place, then a plain cast: both faster than
        np.copyto(out[r0:r1], a, casting="unsafe")  # a clip into uint8; the cast truncates


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
    mix, rest = _buffer("mix", (n,), np.float32), _buffer("rest", (n,), np.float32)
    np.multiply(np.take(warped, split.band_warp, out=_buffer("a", (n,), np.uint8)),
                split.band_w, out=mix)
    np.multiply(np.take(frame, split.band_frame, out=_buffer("b", (n,), np.uint8)),
                split.band_iw, out=rest)
    mix += rest
    result = _buffer("result", (n,), np.uint8)
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


def plan_frames(crop_to_frame, weights, crop_size: int = 512) -> list:
    """One plan per source frame: crop_to_frame (N, 3, 3), weights (N, H, W)."""
    m = np.asarray(crop_to_frame)
    m = m[None] if m.ndim == 2 else m
    if len(m) != len(weights):
        raise ShapeError(f"{len(m)} matrices for {len(weights)} weight masks")
    return [plan_paste(mi, wi, crop_size) for mi, wi in zip(m, weights)]

