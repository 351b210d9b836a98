"""``JoyVASAMotion``: per-frame LivePortrait motion parameters generated from audio.

A plain value: exp (T,21,3), scale (T,1), t (T,3) and pitch/yaw/roll (T,) in degrees, at
``fps`` frames per second. Frame 0 is the relative-driving reference (a silent frame: the
generator starts every clip with silence). :meth:`JoyVASAMotion.to_motion` gives the pack's
MOTION; ``rotation()`` the matrices in LivePortrait's convention.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.motion import DrivingSpec, Motion
from ..liveportrait.keypoints import rotation_matrix

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

    def fields(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}

    def to_motion(self, relative: bool = False, multiplier: float = 1.0) -> Motion:
        """The pack's MOTION: a driving motion composed with the source by JoyVASA's own
        formula (relative to frame 0). ``relative`` switches on the expression-friendly
        rescaling (the reference CLI's flag, off by default); ``multiplier`` scales the
        result (the reference CLI uses 1.10)."""
        n = len(self)
        return Motion(scale=self.scale, pitch=self.pitch, yaw=self.yaw, roll=self.roll, t=self.t,
                      exp=self.exp, fps=self.fps, source_index=torch.zeros(n, dtype=torch.long),
                      kind="driving", origin="joyvasa",
                      driving=DrivingSpec(relative=relative, expression_friendly=True,
                                          multiplier=multiplier, formula="joyvasa"))
