"""Planning of the CPU paste-back (:mod:`.paste`): what does not change from one output
frame to the next for one source frame, crop placement and weight.

* :func:`plan_paste`: the frame box (ROI) where the weight is non-zero inside the crop
  footprint, and the weights there, plus the size of the prefix warp that covers it.
* :func:`plan_template`: the same plan for an official crop template (the default
  blend), made from the template without a frame-size mask, with its core known.
* On a plan's later frames, :class:`PastePlan` finds (once, then keeps) what makes
  them cheaper: for uint8 crops the split of the ROI into interior (w == 1) and band
  (0 < w < 1); for float crops the core, a large axis-aligned box where w == 1.

The crop footprint (where bilinear sampling reaches the crop at all) is computed
analytically, widened by FOOTPRINT_SLACK crop px so that it holds every pixel cv2
covers; pixels outside it keep the frame whatever their weight. A reference mask is 0
wherever cv2 covers nothing, so reference results are unaffected.

A plan holds no frame or crop, is read-only once built (its memo only caches) and can be
shared by every output frame that uses its source frame (for an image source: all of
them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..core.errors import ShapeError
from .reference import CROP_TEMPLATES, template_image, template_weight, warp_to_frame
from .scratch import warm, work_array

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
    from one output frame to the next. Build it with :func:`plan_paste` or
    :func:`plan_template`."""

    frame_hw: tuple          # (H, W) of the frames it pastes into
    crop_size: int           # S of the (S, S, 3) crops it pastes
    matrix: Array            # (2, 3) crop -> frame, as handed to cv2.warpAffine
    roi: tuple               # (y0, y1, x0, x1): where the render has weight; empty if none
    warp_hw: tuple           # (rows, cols) of the prefix warp, covering the ROI
    weight: Array            # (y1-y0, x1-x0) float32 in 0..1, 0 where the crop is not
    # filled on use: "uses" (frames pasted); from the second, "split" (a BandSplit, for
    # uint8 crops) or "core", "strips" and "w3" (float crops: (w3, 1 - w3) per strip);
    # a template plan holds its template's "flat" square from the start
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """Nothing of the render shows: paste returns the frame unchanged."""
        y0, y1, x0, x1 = self.roi
        return y1 <= y0 or x1 <= x0

    @property
    def core(self) -> tuple:
        """ROI-local (r0, r1, c0, c1) box where the weight is 1, (0, 0, 0, 0) if none
        worth it (made on first use, then kept: a weight plan searches its weights, a
        template plan takes it from the template's flat square)."""
        if "core" not in self.memo:
            flat = self.memo.get("flat")
            self.memo["core"] = _core_box(self.weight) if flat is None else _flat_core(self, flat)
        return self.memo["core"]

    @property
    def core_is_cheap(self) -> bool:
        """The core is known, or comes without a search (a template plan)."""
        return "core" in self.memo or "flat" in self.memo

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
    sample positions in the open square (-1, S)^2, plus a pixel for rounding. Empty for
    a collapsed crop (a singular matrix)."""
    if matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0] == 0.0:
        return (0, 0, 0, 0)  # cv2 would map every pixel onto the crop's corner
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

    return _plan_box(frame_hw, crop_size, matrix, w, (by0, bx0), _nonzero_box(w))


def _nonzero_box(values: Array) -> tuple:
    """(r0, r1, c0, c1) of the non-zero values of a 2-D array; empty if none."""
    # cv2's is 3-4x faster than numpy's any() over rows and columns
    c, r, n_cols, n_rows = cv2.boundingRect((values != 0).view(np.uint8))
    return r, r + n_rows, c, c + n_cols


def _plan_box(frame_hw: tuple, crop_size: int, matrix: Array, w: Array, origin: tuple,
              box: tuple) -> PastePlan:
    """The plan whose ROI is ``box`` (r0, r1, c0, c1) of the weights ``w`` (0..1) of the
    frame box at ``origin`` (y, x): the box of their non-zero values."""
    r0, r1, c0, c1 = box
    if r1 <= r0 or c1 <= c0:
        return _empty_plan(frame_hw, crop_size, matrix)
    y0, y1 = origin[0] + r0, origin[0] + r1
    x0, x1 = origin[1] + c0, origin[1] + c1
    warp_hw = (y1, _prefix_cols(x1, frame_hw[1]))
    return PastePlan(frame_hw=frame_hw, crop_size=crop_size, matrix=matrix,
                     roi=(y0, y1, x0, x1), warp_hw=warp_hw,
                     weight=np.ascontiguousarray(w[r0:r1, c0:c1]))


def plan_template(crop_to_frame, template: str, frame_hw: tuple, crop_size: int = 512,
                  alpha: float = 1.0) -> PastePlan:
    """The plan of ``plan_paste(crop_to_frame, alpha * warped_crop_mask(template, ...))``
    without a frame-size mask: a video source's per-frame plan.

    template: a key of ``CROP_TEMPLATES``; alpha: 0..1. The template is warped onto
    the prefix covering the crop box only (the full-frame warp's values there, see
    :mod:`.paste`); it is 0 wherever the crop cannot reach, so needs no footprint. Its
    flat square (where it is 1) gives the plan's core without a search.
    """
    matrix = _as_matrix(crop_to_frame)
    crop_size = int(crop_size)
    frame_hw = tuple(int(v) for v in frame_hw)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ShapeError(f"alpha must be between 0 and 1, got {alpha}")
    by0, by1, bx0, bx1 = _crop_box(matrix, crop_size, frame_hw)
    if by1 <= by0 or bx1 <= bx0 or alpha == 0.0:
        return _empty_plan(frame_hw, crop_size, matrix)
    image = template_image(template, crop_size)
    prefix = (by1, _prefix_cols(bx1, frame_hw[1]))
    warm(image)
    warped = warp_to_frame(image, matrix, prefix, work_array("template", prefix, image.dtype))
    warped = warped[by0:by1, bx0:bx1]
    r0, r1, c0, c1 = _nonzero_box(warped)  # the weight's: it is 0 where this is
    w = np.empty((r1 - r0, c1 - c0), np.float32)
    template_weight(template, warped[r0:r1, c0:c1], out=w)
    if alpha != 1.0:
        w *= np.float32(alpha)  # float32, as torch scales the frame-size mask
    plan = _plan_box(frame_hw, crop_size, matrix, w, (by0 + r0, bx0 + c0),
                     (0, r1 - r0, 0, c1 - c0))
    if plan.empty:
        return plan
    if alpha == 1.0:  # the core, when asked for, comes from the template's flat square
        plan.memo["flat"] = CROP_TEMPLATES[template].flat_square(crop_size)
    else:  # with alpha < 1 no weight is 1
        plan.memo["core"] = (0, 0, 0, 0)
    return plan


# Row ranges of the core search start and end on multiples of ROI rows / _CORE_STEPS
# (then grow row by row): an exact search would cost O(rows^2) per plan.
_CORE_STEPS = 64
# A core under this share of the ROI is not worth splitting the blend into strips for.
_CORE_MIN_SHARE = 0.125
# Crop px kept between a template's flat square and the sample positions of the core
# taken from it: above cv2's position error (float32, or 1/32 px fixed point before 4.11)
_CORE_MARGIN = 0.05


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


def _flat_core(plan: PastePlan, flat: tuple) -> tuple:
    """The core of a template plan without a search: the largest axis-aligned box,
    centred on the template's flat square (crop positions flat[0] .. flat[1], where it
    is 1), whose pixels' bilinear samples read that square only. Kept only if the
    weight is 1 all over it (not so with alpha < 1, nor with a warp that did not give
    exactly 1 there).

    The square's image is a parallelogram, symmetric about its centre, so the largest
    box in it is centred too; its half sizes (a, b) in frame px maximise a * b under
    |B (+-a, +-b)|max <= r, B the frame -> crop linear map, r the half side.
    """
    lo, hi = flat
    centre = np.array([(lo + hi) / 2.0, (lo + hi) / 2.0, 1.0])
    # a sample at q reads floor(q) and floor(q) + 1: both flat for lo <= q < hi
    r = (hi - lo) / 2.0 - _CORE_MARGIN
    coef = np.abs(np.linalg.inv(plan.matrix[:, :2]))  # rows: a*|B_i0| + b*|B_i1| <= r
    a_max = min(r / c for c in coef[:, 0] if c > 0)
    a = np.linspace(0.0, a_max, 257)
    b = np.min([(r - ca * a) / cb for ca, cb in coef if cb > 0], axis=0)
    best = int(np.argmax(a * b))
    cx, cy = plan.matrix @ centre
    y0, y1, x0, x1 = plan.roi
    r0, r1 = _span(cy - b[best], cy + b[best], y0, y1)
    c0, c1 = _span(cx - a[best], cx + a[best], x0, x1)
    if (r1 - r0) * (c1 - c0) < _CORE_MIN_SHARE * (y1 - y0) * (x1 - x0):
        return (0, 0, 0, 0)
    if cv2.minMaxLoc(plan.weight[r0:r1, c0:c1])[0] != 1.0:
        return (0, 0, 0, 0)
    return (r0, r1, c0, c1)


def _span(lo: float, hi: float, start: int, stop: int) -> tuple:
    """ROI-local [first, last + 1) of the frame pixels in [lo, hi], within [start, stop)."""
    first = min(max(int(np.ceil(lo)), start), stop)
    return first - start, max(min(int(np.floor(hi)) + 1, stop), first) - start


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


def plan_frames(crop_to_frame, weights, crop_size: int = 512) -> list:
    """One plan per source frame: crop_to_frame (N, 3, 3), weights (N, H, W)."""
    m = np.asarray(crop_to_frame)
    m = m[None] if m.ndim == 2 else m
    if len(m) != len(weights):
        raise ShapeError(f"{len(m)} matrices for {len(weights)} weight masks")
    return [plan_paste(mi, wi, crop_size) for mi, wi in zip(m, weights)]

