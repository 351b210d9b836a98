"""FaceParams: plain per-frame LivePortrait motion parameters, what the editor works on.

One frame per row, T frames (T = 1 for an image):

* ``kp``    (T,21,3) canonical keypoints
* ``exp``   (T,21,3) expression offsets
* ``pitch``, ``yaw``, ``roll`` (T,) degrees
* ``scale`` (T,1)
* ``t``     (T,3) translation

Tensors of the right size in another layout (the motion extractor's (1,1) angles, a
leading frame axis on (1,21,3) keypoints) are reshaped; anything else is refused with the
field named. Values are float32 and never changed in place.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

import torch

from .errors import ExpressionShapeError

FIELDS = ("kp", "exp", "pitch", "yaw", "roll", "scale", "t")
_ROW = {"kp": (21, 3), "exp": (21, 3), "pitch": (), "yaw": (), "roll": (), "scale": (1,),
        "t": (3,)}


def _as_rows(name: str, value, n: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ExpressionShapeError(f"face parameters: '{name}' must be a tensor, "
                                   f"got {type(value).__name__}")
    row = _ROW[name]
    size = 1
    for d in row:
        size *= d
    if value.numel() != n * size:
        want = "(" + ", ".join(["T"] + [str(d) for d in row]) + ")"
        raise ExpressionShapeError(f"face parameters: '{name}' has shape {tuple(value.shape)}, "
                                   f"expected {want} with T = {n} frames (from 't')")
    value = value.reshape((n,) + row)
    if not value.is_floating_point():
        value = value.float()
    if not bool(torch.isfinite(value).all()):
        raise ExpressionShapeError(f"face parameters: '{name}' holds NaN or infinite values; "
                                   "the motion that produced them failed")
    return value.float()


@dataclass(frozen=True)
class FaceParams:
    kp: torch.Tensor
    exp: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    scale: torch.Tensor
    t: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.t, torch.Tensor) or self.t.numel() % 3 or self.t.numel() == 0:
            raise ExpressionShapeError("face parameters: 't' must be a (T,3) tensor with T >= 1")
        n = self.t.numel() // 3
        for name in FIELDS:
            object.__setattr__(self, name, _as_rows(name, getattr(self, name), n))

    @classmethod
    def from_mapping(cls, values: Mapping) -> "FaceParams":
        """From a dict with the seven keys (a motion extractor's output, a golden input)."""
        missing = [k for k in FIELDS if k not in values]
        if missing:
            raise ExpressionShapeError(f"face parameters: missing {missing}; expected the keys "
                                       f"{list(FIELDS)}")
        return cls(**{k: values[k] for k in FIELDS})

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}

    def angles(self) -> torch.Tensor:
        """(T,3) degrees in the order pitch, yaw, roll."""
        return torch.stack([self.pitch, self.yaw, self.roll], dim=1)

    def select(self, index) -> "FaceParams":
        """Frames ``index`` (an int, a slice or an index tensor)."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return FaceParams(**{k: v[index] for k, v in self.as_dict().items()})

    def frame(self, i: int) -> "FaceParams":
        """Frame ``i`` as a one-frame FaceParams."""
        return self.select(int(i))

    def replace(self, **changes) -> "FaceParams":
        return dataclasses.replace(self, **changes)
