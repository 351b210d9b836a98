"""Stitching and retargeting MLPs (../shared/spec/liveportrait.md §1.7).

Three plain MLPs (Linear→ReLU ..., final Linear) with keys ``mlp.{0,2,4,...}``:
stitching S (``retarget_shoulder``, 126→65), lip (``retarget_mouth``, 65→63) and eye
(``retarget_eye``, 66→63). Ditto ships S alone as ``stitch_network.pth``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.errors import TalkingHeadError


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


# (upper lid, lower lid, corner, corner) per eye and (upper lip, lower lip, corner, corner)
RATIO_POINTS = {
    "mediapipe": (((159, 145, 33, 133), (386, 374, 362, 263)), (13, 14, 61, 291)),
    "lp203": (((6, 18, 0, 12), (30, 42, 24, 36)), (90, 102, 48, 66)),   # spec §1.7
}


def open_ratios(landmarks, scheme: str) -> tuple:
    """(N,K,2) landmarks -> eye-open ratios (N,2) and lip-open ratio (N,1): lid (or lip)
    gap over eye (or mouth) width, the quantities the retargeting MLPs read. ``scheme``:
    a MediaPipe 478/468 layout or LivePortrait's 203 points."""
    key = "mediapipe" if scheme.startswith("mediapipe") else (
        "lp203" if scheme in ("lp203", "lmk203", "liveportrait203", "203") else None)
    if key is None:
        raise TalkingHeadError(f"eye/lip retargeting needs MediaPipe or 203-point landmarks, "
                               f"not '{scheme}'")
    eyes, lip = RATIO_POINTS[key]
    pts = torch.as_tensor(landmarks, dtype=torch.float32)

    def ratio(a, b, c, d):
        return (pts[:, a] - pts[:, b]).norm(dim=-1) / ((pts[:, c] - pts[:, d]).norm(dim=-1) + 1e-6)

    eye = torch.stack([ratio(*eyes[0]), ratio(*eyes[1])], dim=1)
    return eye, ratio(*lip).unsqueeze(1)
