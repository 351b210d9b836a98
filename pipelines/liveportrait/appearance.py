"""LivePortrait appearance feature extractor F (../shared/spec/liveportrait.md §1.2).

A 256² RGB crop in [0,1] (no mean/std normalisation) becomes a 3-D feature volume
(B, reshape_channel, depth, 64, 64) = (B,32,16,64,64) at the official sizes. Ditto ships
the same network as ``appearance_extractor.pth``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import DownBlock2d, ResBlock3d, SameBlock2d


@dataclass(frozen=True)
class AppearanceConfig:
    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    num_resblocks: int = 6

    @property
    def reshape_depth(self) -> int:
        return self.max_features // self.reshape_channel


TINY_APPEARANCE = AppearanceConfig(block_expansion=4, max_features=16, reshape_channel=4,
                                   num_resblocks=1)


class AppearanceFeatureExtractor(nn.Module):
    def __init__(self, cfg: AppearanceConfig = AppearanceConfig()):
        super().__init__()
        self.cfg = cfg
        be = cfg.block_expansion
        self.first = SameBlock2d(cfg.image_channel, be)
        chans = [min(cfg.max_features, be * 2 ** i) for i in range(cfg.num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            DownBlock2d(chans[i], chans[i + 1]) for i in range(cfg.num_down_blocks))
        self.second = nn.Conv2d(chans[-1], cfg.max_features, 1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            # the official module names are '3dr0'...'3dr5'
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.first(image)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)
        b, _, h, w = x.shape
        x = x.reshape(b, self.cfg.reshape_channel, self.cfg.reshape_depth, h, w)
        return self.resblocks_3d(x)
