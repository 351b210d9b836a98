"""``motion_template.pkl``: the statistics that de-normalise the generated coefficients.

The file is a dict of NumPy arrays ``{mean,std,min,max,abs_max}_{scale,R,t,exp,pitch,yaw,
roll,lip,eyes}`` (JoyVASA's data preparation writes it). Only these are read:
``mean_exp``/``std_exp`` (exp is z-scored) and ``min_``/``max_`` of scale, t, pitch, yaw and
roll (min-max normalised). It is read with the pack's restricted unpickler.

De-normalisation follows the reference's arithmetic: the template keeps its own dtype,
``max - min`` is taken first, and the result is cast to float32 (a float64 template
therefore de-normalises in float64, as the reference's torch/NumPy promotion does).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from ..core.checkpoint_io import load_pickle_safe
from ..core.errors import CheckpointError

# coefficient layout: [exp 63 | scale | tx ty tz | pitch | yaw | roll]
SLICES = {"exp": slice(0, 63), "scale": slice(63, 64), "t": slice(64, 67),
          "pitch": slice(67, 68), "yaw": slice(68, 69), "roll": slice(69, 70)}
SIZES = {k: s.stop - s.start for k, s in SLICES.items()}
REQUIRED = ["mean_exp", "std_exp"] + [f"{m}_{k}" for k in ("scale", "t", "pitch", "yaw", "roll")
                                      for m in ("min", "max")]


@dataclass(frozen=True)
class MotionTemplate:
    """The de-normalisation statistics (NumPy arrays, flattened, as stored)."""

    stats: Mapping

    @classmethod
    def from_mapping(cls, data: Mapping, where: str = "motion template") -> "MotionTemplate":
        if not isinstance(data, Mapping):
            raise CheckpointError(f"{where} is not a dict of arrays (found {type(data).__name__}); "
                                  "use JoyVASA's motion_template/motion_template.pkl")
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(missing)}; use JoyVASA's "
                                  "motion_template/motion_template.pkl")
        stats = {}
        for key, value in data.items():
            arr = np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
            if arr.dtype.kind != "f":
                continue
            stats[key] = arr.reshape(-1)
        for key in REQUIRED:
            want = SIZES[key.split("_", 1)[1]]
            if key not in stats or stats[key].size != want:
                raise CheckpointError(f"{where}: '{key}' should hold {want} numbers, found "
                                      f"{np.asarray(data[key]).shape}")
        return cls(stats)

    def tensor(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.stats[key]))

    def span(self, part: str) -> torch.Tensor:
        """max - min of a min-max normalised part, in NumPy first (the reference's order)."""
        return torch.from_numpy(np.ascontiguousarray(self.stats[f"max_{part}"] - self.stats[f"min_{part}"]))


def load_template(path) -> MotionTemplate:
    path = os.fspath(path)
    return MotionTemplate.from_mapping(load_pickle_safe(path), path)


def denormalize(coef: torch.Tensor, template: MotionTemplate) -> dict:
    """(T, 70) normalised coefficients -> {exp (T,21,3), scale (T,1), t (T,3), pitch/yaw/roll
    (T,1) in degrees}, float32."""
    coef = coef.detach().float().cpu()
    out = {"exp": (coef[:, SLICES["exp"]] * template.tensor("std_exp")
                   + template.tensor("mean_exp")).float().reshape(-1, 21, 3)}
    for part in ("scale", "t", "pitch", "yaw", "roll"):
        value = coef[:, SLICES[part]] * template.span(part) + template.tensor(f"min_{part}")
        out[part] = value.float()
    return out
