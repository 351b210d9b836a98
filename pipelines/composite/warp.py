"""Batched crop -> frame warping in torch with cv2.warpAffine's geometry.

cv2.warpAffine(img, M_c2o, (W, H)) samples, for every frame pixel p, the crop at
M_c2o^-1 p bilinearly with a constant-0 border, pixel centres at integers. The same is
``grid_sample(align_corners=True, padding_mode="zeros")`` on a grid built from M_c2o^-1.
Only the region of interest (the bounding box of the crop square in the frame) is
sampled, so the cost follows the face size, not the frame size.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class Roi(NamedTuple):
    """A frame rectangle [y0, y1) x [x0, x1)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    @property
    def shape(self) -> tuple:
        return self.y1 - self.y0, self.x1 - self.x0


def crop_roi(crop_to_frame: torch.Tensor, crop_size: int, frame_hw: tuple) -> Roi:
    """Frame box covering the crop square of every matrix in the (B, 3, 3) batch.

    Bilinear sampling with a zero border still sees the crop at source positions in
    (-1, S), so the box covers that open square (plus one pixel for float rounding).
    """
    lo, hi = -1.0, float(crop_size)
    corners = torch.tensor([[lo, lo, 1], [hi, lo, 1], [lo, hi, 1], [hi, hi, 1]],
                           dtype=torch.float64)
    pts = torch.einsum("bij,kj->bki", crop_to_frame[:, :2].to(torch.float64), corners)
    pts = pts.reshape(-1, 2)
    h, w = frame_hw
    x0 = max(int(torch.floor(pts[:, 0].min())) - 1, 0)
    y0 = max(int(torch.floor(pts[:, 1].min())) - 1, 0)
    x1 = min(int(torch.ceil(pts[:, 0].max())) + 2, int(w))
    y1 = min(int(torch.ceil(pts[:, 1].max())) + 2, int(h))  # +1 for the exclusive end
    return Roi(y0, y1, x0, x1)


def frame_to_crop(crop_to_frame: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) float64 inverse, the way cv2 inverts M (in double precision)."""
    m = torch.zeros(crop_to_frame.shape[0], 3, 3, dtype=torch.float64)
    m[:, :2] = crop_to_frame[:, :2].to(torch.float64).cpu()
    m[:, 2, 2] = 1.0
    return torch.linalg.inv(m)


def sample_grid(crop_to_frame: torch.Tensor, roi: Roi, crop_size: int,
                device) -> torch.Tensor:
    """grid_sample grid (B, h, w, 2) mapping ROI pixels to normalised crop coordinates.

    The affine map is re-anchored at the ROI origin in float64 before going to float32,
    so large frame coordinates do not cost precision. Positions are not rounded to
    1/32 px: the OpenCV 5 float warp used by the goldens does not do that either.
    """
    inv = frame_to_crop(crop_to_frame)[:, :2]  # frame px -> crop px
    origin = torch.tensor([roi.x0, roi.y0, 1.0], dtype=torch.float64)
    a = inv[:, :, :2].to(device=device, dtype=torch.float32)  # (B, 2, 2)
    b = (inv @ origin).to(device=device, dtype=torch.float32)  # (B, 2): ROI origin in crop px
    h, w = roi.shape
    xs = torch.arange(w, dtype=torch.float32, device=device)
    ys = torch.arange(h, dtype=torch.float32, device=device)
    src = (a[:, None, None, :, 0] * xs[None, None, :, None]
           + a[:, None, None, :, 1] * ys[None, :, None, None]
           + b[:, None, None, :])
    return src * (2.0 / (crop_size - 1)) - 1.0  # align_corners=True: 0 -> -1, S-1 -> +1


def warp_crops(crops: torch.Tensor, crop_to_frame: torch.Tensor, roi: Roi) -> torch.Tensor:
    """Warp (B, C, S, S) crops (already on their device) into the ROI: (B, C, h, w)."""
    grid = sample_grid(crop_to_frame, roi, crops.shape[-1], crops.device)
    return F.grid_sample(crops, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)
