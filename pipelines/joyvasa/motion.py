"""``JoyVASAMotion``: per-frame LivePortrait motion parameters generated from audio.

A plain value: exp (T,21,3), scale (T,1), t (T,3) and pitch/yaw/roll (T,) in degrees, at
``fps`` frames per second. Frame 0 is the relative-driving reference (a silent frame: the
generator starts every clip with silence). Rotation matrices are derived on demand in
LivePortrait's convention (``rotation()``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..liveportrait.keypoints import PoseExp, rotation_matrix

FIELDS = ("exp", "scale", "t", "pitch", "yaw", "roll")


@dataclass
class JoyVASAMotion:
    exp: torch.Tensor
    scale: torch.Tensor
    t: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    fps: float

    def __len__(self) -> int:
        return int(self.exp.shape[0])

    def rotation(self) -> torch.Tensor:
        """(T,3,3) in LivePortrait's transposed convention (Rz·Ry·Rx)ᵀ."""
        return rotation_matrix(self.pitch, self.yaw, self.roll)

    def pose_exp(self) -> PoseExp:
        return PoseExp(self.rotation(), self.exp, self.scale, self.t)

    def fields(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}

    def replace(self, **changes) -> "JoyVASAMotion":
        return replace(self, **changes)
