"""Colour matching of the rendered face to the original frame (mean/std per channel).

The statistics are weighted by the blend mask, so they describe exactly the pixels
that get replaced, and the feathered edge counts less than the interior.
"""
from __future__ import annotations

import torch

from ..core.choices import COLOR_MATCH  # noqa: E402,F401  (re-exported)
from ..core.errors import ShapeError
# A render whose spread is far from the original's (flat background, teeth vs closed
# lips) would be stretched wildly; the per-channel gain stays within [1/2, 2].
STD_RATIO_LIMIT = 2.0
MIN_WEIGHT = 1.0  # pixels' worth of mask below which a frame is left as rendered

# sRGB (D65) <-> CIE XYZ, and the D65 white point
_RGB2XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPS = 216 / 24389
_KAPPA = 24389 / 27


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, t.clamp_min(1e-12) ** (1 / 3), (_KAPPA * t + 16) / 116)


def _lab_f_inv(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) sRGB in 0..1 -> CIE Lab (L 0..100)."""
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp_min(0) + 0.055) / 1.055) ** 2.4)
    m = _RGB2XYZ.to(rgb)
    xyz = (lin @ m.T) / _WHITE.to(rgb)
    f = _lab_f(xyz)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                        200 * (f[..., 1] - f[..., 2])], dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_lab` (not clipped)."""
    fy = (lab[..., 0] + 16) / 116
    f = torch.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], dim=-1)
    xyz = _lab_f_inv(f) * _WHITE.to(lab)
    lin = xyz @ _XYZ2RGB.to(lab).T
    lin = lin.clamp_min(0)
    return torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def _weighted_stats(x: torch.Tensor, w: torch.Tensor, total: torch.Tensor):
    """Per-frame, per-channel weighted mean and std; sums in float64 (a float32 sum
    over ~1e6 pixels loses digits)."""
    mean = (x * w).sum(dim=(1, 2), dtype=torch.float64) / total
    centred = x - mean[:, None, None].to(x.dtype)
    var = (centred * centred * w).sum(dim=(1, 2), dtype=torch.float64) / total
    return mean.to(x.dtype), var.sqrt().to(x.dtype)


def match_color(render: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                space: str = "lab") -> torch.Tensor:
    """Shift/scale each channel of ``render`` (B,h,w,3, 0..1) so its weighted mean and
    std equal ``target``'s under ``weight`` (B,h,w). Returns clipped RGB."""
    if space not in COLOR_MATCH:
        raise ShapeError(f"color_match must be one of {COLOR_MATCH}, got {space!r}")
    if space == "off":
        return render
    to, back = (rgb_to_lab, lab_to_rgb) if space == "lab" else (lambda v: v, lambda v: v)
    r, t = to(render.float()), to(target.float())
    w = weight.float()[..., None]
    total = w.sum(dim=(1, 2), dtype=torch.float64)
    usable = total[:, 0] >= MIN_WEIGHT
    total = total.clamp_min(1e-12)
    mean_r, std_r = _weighted_stats(r, w, total)
    mean_t, std_t = _weighted_stats(t, w, total)
    gain = (std_t / std_r.clamp_min(1e-6)).clamp(1 / STD_RATIO_LIMIT, STD_RATIO_LIMIT)
    out = (r - mean_r[:, None, None]) * gain[:, None, None] + mean_t[:, None, None]
    out = back(out).clamp(0.0, 1.0).to(render.dtype)
    return torch.where(usable[:, None, None, None], out, render)
