"""LivePortrait warping module W (../shared/spec/liveportrait.md §1.5; Ditto §3.10).

A dense motion network turns 21 source/driving keypoint pairs into 22 sparse flows
(background + one per keypoint), mixes them with a softmax mask predicted by a 3-D
hourglass, and predicts an occlusion map. The source feature volume is then warped by
the dense flow (trilinear ``grid_sample``, zeros padding, align_corners=False), flattened
to 2-D and passed through a small head.

Argument order here is ``(feature, kp_source, kp_driving)`` (Ditto's order; the official
LivePortrait call passes driving first).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DownBlock3d, SameBlock2d, UpBlock3d


@dataclass(frozen=True)
class WarpingConfig:
    num_kp: int = 21
    feature_channels: int = 32      # F's reshape_channel
    feature_depth: int = 16         # F's reshape_depth
    block_expansion: int = 64
    max_features: int = 512         # channels of the flattened warped volume (32*16)
    num_down_blocks: int = 2
    # dense motion network
    dm_block_expansion: int = 32
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    compress: int = 4
    mask_kernel: int = 7
    kp_variance: float = 0.01

    @property
    def out_channels(self) -> int:
        return self.block_expansion * 2 ** self.num_down_blocks


TINY_WARPING = WarpingConfig(feature_channels=4, feature_depth=4, block_expansion=4,
                             max_features=16, dm_block_expansion=4, dm_max_features=16,
                             dm_num_blocks=2, compress=1, mask_kernel=3)


def coordinate_grid(d: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(d,h,w,3) grid of normalised (x, y, z) = 2*i/(n-1) - 1 (x right, y down, z in)."""
    axes = [2 * (torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)) - 1
            for n in (w, h, d)]
    x = axes[0].view(1, 1, w).expand(d, h, w)
    y = axes[1].view(1, h, 1).expand(d, h, w)
    z = axes[2].view(d, 1, 1).expand(d, h, w)
    return torch.stack([x, y, z], dim=3)


def keypoint_gaussians(kp: torch.Tensor, grid: torch.Tensor, variance: float) -> torch.Tensor:
    """(B,K,3) keypoints on a (d,h,w,3) grid -> (B,K,d,h,w) exp(-|p-kp|^2 / (2 var))."""
    diff = grid.unsqueeze(0).unsqueeze(0) - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


class Hourglass(nn.Module):
    """3-D U-Net that pools only H and W; output has ``in_features + block_expansion``
    channels (the input is the last skip)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int):
        super().__init__()
        ch = lambda i: min(max_features, block_expansion * 2 ** i)  # noqa: E731
        self.encoder = nn.Module()
        self.encoder.down_blocks = nn.ModuleList(
            DownBlock3d(in_features if i == 0 else ch(i), ch(i + 1)) for i in range(num_blocks))
        self.decoder = nn.Module()
        self.decoder.up_blocks = nn.ModuleList(
            UpBlock3d((1 if i == num_blocks - 1 else 2) * ch(i + 1), ch(i))
            for i in reversed(range(num_blocks)))
        self.out_filters = block_expansion + in_features
        self.decoder.conv = nn.Conv3d(self.out_filters, self.out_filters, 3, padding=1)
        self.decoder.norm = nn.BatchNorm3d(self.out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.encoder.down_blocks:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.decoder.norm(self.decoder.conv(out)))


class DenseMotionNetwork(nn.Module):
    def __init__(self, cfg: WarpingConfig):
        super().__init__()
        self.cfg = cfg
        k1 = cfg.num_kp + 1
        self.hourglass = Hourglass(cfg.dm_block_expansion, k1 * (cfg.compress + 1),
                                   cfg.dm_num_blocks, cfg.dm_max_features)
        nf = self.hourglass.out_filters
        self.mask = nn.Conv3d(nf, k1, cfg.mask_kernel, padding=cfg.mask_kernel // 2)
        self.compress = nn.Conv3d(cfg.feature_channels, cfg.compress, 1)
        self.norm = nn.BatchNorm3d(cfg.compress)
        self.occlusion = nn.Conv2d(nf * cfg.feature_depth, 1, 7, padding=3)

    def forward(self, feature: torch.Tensor, kp_source: torch.Tensor,
                kp_driving: torch.Tensor) -> dict:
        b, _, d, h, w = feature.shape
        k1 = self.cfg.num_kp + 1
        feature = F.relu(self.norm(self.compress(feature)))
        # geometry stays in fp32 whatever the network dtype: flows are sampling positions
        grid = coordinate_grid(d, h, w, kp_source.float())
        kp_s, kp_d = kp_source.float(), kp_driving.float()
        flows = grid.unsqueeze(0).unsqueeze(0) - kp_d[:, :, None, None, None, :]
        flows = flows + kp_s[:, :, None, None, None, :]
        sparse = torch.cat([grid.expand(b, 1, d, h, w, 3), flows], dim=1)  # (B,22,d,h,w,3)

        c = feature.shape[1]
        repeated = feature.unsqueeze(1).expand(b, k1, c, d, h, w).reshape(b * k1, c, d, h, w)
        deformed = F.grid_sample(repeated.float(), sparse.reshape(b * k1, d, h, w, 3),
                                 align_corners=False).view(b, k1, c, d, h, w)

        heat = (keypoint_gaussians(kp_d, grid, self.cfg.kp_variance)
                - keypoint_gaussians(kp_s, grid, self.cfg.kp_variance))
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1).unsqueeze(2)

        x = torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w).to(feature.dtype)
        prediction = self.hourglass(x)
        mask = torch.softmax(self.mask(prediction).float(), dim=1)  # (B,22,d,h,w)
        deformation = (sparse.permute(0, 1, 5, 2, 3, 4) * mask.unsqueeze(2)).sum(dim=1)
        deformation = deformation.permute(0, 2, 3, 4, 1)  # (B,d,h,w,3)
        occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return {"deformation": deformation, "occlusion_map": occlusion, "mask": mask}


class WarpingNetwork(nn.Module):
    """``forward(feature (B,32,16,64,64), kp_source (B,21,3), kp_driving (B,21,3))`` ->
    ``{"out": (B,256,64,64) (already times the occlusion map), "occlusion_map":
    (B,1,64,64), "deformation": (B,16,64,64,3), "mask": (B,22,16,64,64)}``."""

    def __init__(self, cfg: WarpingConfig = WarpingConfig()):
        super().__init__()
        self.cfg = cfg
        self.dense_motion_network = DenseMotionNetwork(cfg)
        self.third = SameBlock2d(cfg.max_features, cfg.out_channels, leaky=True)
        self.fourth = nn.Conv2d(cfg.out_channels, cfg.out_channels, 1)

    def forward(self, feature: torch.Tensor, kp_source: torch.Tensor,
                kp_driving: torch.Tensor) -> dict:
        dense = self.dense_motion_network(feature, kp_source, kp_driving)
        warped = F.grid_sample(feature.float(), dense["deformation"], align_corners=False)
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.reshape(b, c * d, h, w).to(feature.dtype)))
        occlusion = dense["occlusion_map"]
        return {"out": out * occlusion.to(out.dtype), **dense}
