"""src_ratio and sample mixing of the Expression Editor (sample_ratio, sample_parts).

* ``src_ratio`` fades the source's own expression: ``s_exp = kp + src_ratio·exp``, except
  keypoint 5, which keeps its full expression (the reference resets it).
* A *sample* (a second face) lends part of its motion, weighted by ``sample_ratio``:
  its expression (all keypoints, or only the mouth or eye keypoints), its pose, or both.
  Its keypoint 5 x/y expression is zeroed first. The sample is added on top of whatever
  src_ratio leaves of the source's expression.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from ..core.choices import SAMPLE_PARTS
from .errors import ExpressionError
from .params import FaceParams

MOUTH_KP = (14, 17, 19, 20)
EYES_KP = (1, 2, 11, 13, 15, 16)
KEPT_KP = 5  # keeps its full source expression under src_ratio
MIX_RANGES = {"src_ratio": (0.0, 1.0, 0.01, 1.0), "sample_ratio": (-0.2, 1.2, 0.01, 1.0)}


@dataclass(frozen=True)
class Mix:
    """How much of the source's expression stays and what a sample lends."""

    src_ratio: float = 1.0
    sample_ratio: float = 1.0
    sample_parts: str = "OnlyExpression"

    def __post_init__(self):
        for name in ("src_ratio", "sample_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ExpressionError(f"'{name}' must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.sample_parts not in SAMPLE_PARTS:
            raise ExpressionError(f"sample_parts must be one of {', '.join(SAMPLE_PARTS)}, "
                                  f"got {self.sample_parts!r}")


def faded_expression(src: FaceParams, src_ratio: float) -> torch.Tensor:
    """src_ratio·exp (T,21,3), keypoint 5 with its full exp."""
    faded = src.exp * src_ratio
    faded[:, KEPT_KP] = src.exp[:, KEPT_KP]
    return faded


def sample_expression(sample: FaceParams) -> torch.Tensor:
    """The sample's expression (21,3) as the editor uses it: keypoint 5's x and y zeroed."""
    if len(sample) != 1:
        raise ExpressionError(f"a sample is one face (1 frame), got {len(sample)} frames; pick "
                              "one with FaceParams.frame(i)")
    exp = sample.exp[0].clone()
    exp[KEPT_KP, 0] = 0
    exp[KEPT_KP, 1] = 0
    return exp


def mix_sample(e: torch.Tensor, rotation: list, sample: FaceParams, mix: Mix) -> tuple:
    """Step 4 of the editor: the sample's parts added to ``e`` (21,3) and to the rotation
    accumulators [pitch, yaw, roll]. Returns new (e, rotation)."""
    exp_d = sample_expression(sample)
    rho, parts = mix.sample_ratio, mix.sample_parts
    pitch, yaw, roll = rotation
    if parts in ("OnlyExpression", "All"):
        e = e + exp_d * rho
    if parts in ("OnlyRotation", "All"):
        # float + float32 tensor: from here on the accumulator is float32, as in the reference
        pitch = pitch + sample.pitch[0] * rho
        yaw = yaw + sample.yaw[0] * rho   # the sample's yaw is not negated
        roll = roll + sample.roll[0] * rho
    elif parts in ("OnlyMouth", "OnlyEyes"):
        e = e.clone()
        for k in MOUTH_KP if parts == "OnlyMouth" else EYES_KP:
            e[k] += exp_d[k] * rho
    return e, [pitch, yaw, roll]
