"""Stitching and retargeting MLPs (../shared/spec/liveportrait.md §1.7).

Three plain MLPs (Linear→ReLU ..., final Linear) with keys ``mlp.{0,2,4,...}``:
stitching S (``retarget_shoulder``, 126→65), lip (``retarget_mouth``, 65→63) and eye
(``retarget_eye``, 66→63). Ditto ships S alone as ``stitch_network.pth``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MLPConfig:
    in_features: int
    hidden: tuple
    out_features: int


STITCH = MLPConfig(126, (128, 128, 64), 65)
LIP = MLPConfig(65, (128, 128, 64), 63)
EYE = MLPConfig(66, (256, 256, 128, 128, 64), 63)

# official checkpoint entry -> (our role, config)
ENTRIES = {"retarget_shoulder": ("stitching", STITCH),
           "retarget_mouth": ("retarget_lip", LIP),
           "retarget_eye": ("retarget_eye", EYE)}


class StitchingMLP(nn.Module):
    def __init__(self, cfg: MLPConfig):
        super().__init__()
        layers, size = [], cfg.in_features
        for h in cfg.hidden:
            layers += [nn.Linear(size, h), nn.ReLU(inplace=True)]
            size = h
        layers.append(nn.Linear(size, cfg.out_features))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


@torch.no_grad()
def stitch(S: nn.Module, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
    """x_d corrected by S so the shoulders/neck stay attached: Δexp on all keypoints plus
    a shared Δ(tx, ty). x_s, x_d: (B,21,3)."""
    b, k = x_d.shape[:2]
    delta = S(torch.cat([x_s.reshape(b, -1), x_d.reshape(b, -1)], dim=1))
    out = x_d + delta[:, : k * 3].reshape(b, k, 3)
    return torch.cat([out[..., :2] + delta[:, k * 3: k * 3 + 2].reshape(b, 1, 2), out[..., 2:]], dim=-1)


@torch.no_grad()
def retarget_eye(R_eye: nn.Module, x_s: torch.Tensor, eye_ratio: torch.Tensor) -> torch.Tensor:
    """Keypoint delta (B,21,3) from x_s and [c_s,eyeL, c_s,eyeR, c_d,eye] (B,3)."""
    b = x_s.shape[0]
    return R_eye(torch.cat([x_s.reshape(b, -1), eye_ratio.reshape(b, -1)], dim=1)).reshape(b, -1, 3)


@torch.no_grad()
def retarget_lip(R_lip: nn.Module, x_s: torch.Tensor, lip_ratio: torch.Tensor) -> torch.Tensor:
    """Keypoint delta (B,21,3) from x_s and [c_s,lip, c_d,lip] (B,2)."""
    b = x_s.shape[0]
    return R_lip(torch.cat([x_s.reshape(b, -1), lip_ratio.reshape(b, -1)], dim=1)).reshape(b, -1, 3)


def eye_open_ratios(lmk203) -> torch.Tensor:
    """(B,203,2) landmarks -> (B,2) left/right eye-open ratios."""
    l = torch.as_tensor(lmk203)
    d = lambda a, b: (l[:, a] - l[:, b]).norm(dim=-1)  # noqa: E731
    return torch.stack([d(6, 18) / (d(0, 12) + 1e-6), d(30, 42) / (d(24, 36) + 1e-6)], dim=1)


def lip_open_ratio(lmk203) -> torch.Tensor:
    """(B,203,2) landmarks -> (B,1) lip-open ratio."""
    l = torch.as_tensor(lmk203)
    d = lambda a, b: (l[:, a] - l[:, b]).norm(dim=-1)  # noqa: E731
    return (d(90, 102) / (d(48, 66) + 1e-6)).unsqueeze(1)


def combined_eye_ratio(source_lmk203, driving_lmk203) -> torch.Tensor:
    """R_eyes' ratio input per frame: [c_s,eyeL, c_s,eyeR, c_d,eye] (T,3). As in the
    official code, c_d is the driving LEFT-eye ratio alone. Source landmarks (1 or T,203,2)
    broadcast over the T driving frames."""
    src = eye_open_ratios(source_lmk203)
    drv = eye_open_ratios(driving_lmk203)[:, :1]
    return torch.cat([src.expand(drv.shape[0], 2), drv], dim=1)


def combined_lip_ratio(source_lmk203, driving_lmk203) -> torch.Tensor:
    """R_lip's ratio input per frame: [c_s,lip, c_d,lip] (T,2)."""
    drv = lip_open_ratio(driving_lmk203)
    return torch.cat([lip_open_ratio(source_lmk203).expand(drv.shape[0], 1), drv], dim=1)
