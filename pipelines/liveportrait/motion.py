"""LivePortrait motion extractor M: a ConvNeXt-V2 tiny backbone with linear heads
(../shared/spec/liveportrait.md §1.3).

Outputs per image (raw, no activation): pitch/yaw/roll 66-bin logits, t (3), exp (63),
scale (1), kp (63). The official wrapper keeps the backbone as ``self.detector``, so every
checkpoint key starts with ``detector.``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("kp", "scale", "pitch", "yaw", "roll", "t", "exp")


@dataclass(frozen=True)
class MotionConfig:
    in_chans: int = 3
    depths: tuple = (3, 3, 9, 3)
    dims: tuple = (96, 192, 384, 768)
    num_kp: int = 21
    num_bins: int = 66

    def head_sizes(self) -> dict:
        k3 = 3 * self.num_kp
        return {"kp": k3, "scale": 1, "pitch": self.num_bins, "yaw": self.num_bins,
                "roll": self.num_bins, "t": 3, "exp": k3}


TINY_MOTION = MotionConfig(depths=(1, 1, 1, 1), dims=(8, 8, 16, 16))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (eps 1e-6), written as the
    reference computes it (mean, biased variance) to keep the float rounding close."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation on NHWC: gamma*(x*N) + beta + x, N = G/mean_C(G),
    G = per-channel L2 norm over H, W."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * n) + self.beta + x


class Block(nn.Module):
    """Depthwise 7x7 -> LN -> Linear 4C -> GELU -> GRN -> Linear C, plus the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, cfg: MotionConfig):
        super().__init__()
        d = cfg.dims
        stem = nn.Sequential(nn.Conv2d(cfg.in_chans, d[0], 4, stride=4), LayerNorm2d(d[0]))
        self.downsample_layers = nn.ModuleList([stem])
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(LayerNorm2d(d[i]), nn.Conv2d(d[i], d[i + 1], 2, stride=2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block(d[i]) for _ in range(cfg.depths[i]))) for i in range(4))
        self.norm = nn.LayerNorm(d[-1], eps=1e-6)
        for name, size in cfg.head_sizes().items():
            self.add_module(f"fc_{name}", nn.Linear(d[-1], size))

    def forward(self, x: torch.Tensor) -> dict:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        feat = self.norm(x.mean([-2, -1]))
        return {name: getattr(self, f"fc_{name}")(feat) for name in HEADS}


class MotionExtractor(nn.Module):
    """``forward(image (B,3,256,256) in [0,1])`` -> dict of raw head outputs."""

    def __init__(self, cfg: MotionConfig = MotionConfig()):
        super().__init__()
        self.cfg = cfg
        self.detector = ConvNeXtV2(cfg)

    def forward(self, image: torch.Tensor) -> dict:
        return self.detector(image)
