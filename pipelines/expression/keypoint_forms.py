"""The keypoint formulas of AdvancedLivePortrait, written as it evaluates them.

Three forms of "pose the canonical keypoints" occur (../shared/fidelity/expression/README.md):

* :func:`source_keypoints` (x_s, what the stitching MLP and the warper get for the source):
  ``scale·(kp @ R + exp)`` with t added to x and y only: LivePortrait's own form.
* :func:`editor_keypoints` (the Expression Editor's driving keypoints):
  ``scale·(1+s)·((s_exp + e) @ R) + t``: the expression is *inside* the rotation and t is
  added to all three axes, so even an all-zero edit moves the keypoints a little.
* :func:`frame_keypoints` (a frame of the command-script animation):
  ``S·(E @ R) + Tr``, the same shape with the scale term added instead of multiplied.

Both modes use these forms: they are what the loved pack's sliders look like. The
rotation matrix is computed as the reference does (``angle / 180 * π`` in float32), which
rounds differently from ``torch.deg2rad`` in the last bit.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Union

import torch
from torch import nn

from ..core.errors import CheckpointError
from ..liveportrait.stitching import STITCH, StitchingMLP, stitch
from .errors import ExpressionShapeError
from .params import FaceParams

Stitcher = Union[nn.Module, Callable[[torch.Tensor], torch.Tensor], Mapping[str, torch.Tensor]]


def rotation_matrix(pitch, yaw, roll) -> torch.Tensor:
    """Degrees (N,) each (or anything with N elements) -> (N,3,3) = (Rz·Ry·Rx)ᵀ; points
    are row vectors rotated as ``X @ R``."""
    p, y, r = (torch.as_tensor(a, dtype=torch.float32).reshape(-1, 1) / 180 * math.pi
               for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)
    n = p.shape[0]
    rot_x = torch.cat([one, zero, zero, zero, p.cos(), -p.sin(), zero, p.sin(), p.cos()],
                      dim=1).reshape(n, 3, 3)
    rot_y = torch.cat([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()],
                      dim=1).reshape(n, 3, 3)
    rot_z = torch.cat([r.cos(), -r.sin(), zero, r.sin(), r.cos(), zero, zero, zero, one],
                      dim=1).reshape(n, 3, 3)
    return (rot_z @ rot_y @ rot_x).permute(0, 2, 1)


def source_keypoints(src: FaceParams) -> torch.Tensor:
    """x_s (T,21,3): ``scale·(kp @ R(pose) + exp)``, then t on x and y (tz unused)."""
    R = rotation_matrix(src.pitch, src.yaw, src.roll)
    x = (src.kp @ R + src.exp) * src.scale[:, :, None]
    return torch.cat([x[..., :2] + src.t[:, None, :2], x[..., 2:]], dim=-1)


def editor_keypoints(scale: torch.Tensor, s: float, expression: torch.Tensor, R: torch.Tensor,
                     t: torch.Tensor) -> torch.Tensor:
    """Expression Editor: ``scale·(1+s) · (expression @ R) + t`` (t on all three axes).
    scale (T,1), expression (T,21,3) = s_exp + e, R (T,3,3), t (T,3)."""
    return (scale * (1 + s))[:, :, None] * (expression @ R) + t[:, None, :]


def frame_keypoints(S: torch.Tensor, E: torch.Tensor, R: torch.Tensor,
                    Tr: torch.Tensor) -> torch.Tensor:
    """Script animation frame: ``S · (E @ R) + Tr``; S (F,1), E (F,21,3), R (F,3,3), Tr (F,3)."""
    return S[:, :, None] * (E @ R) + Tr[:, None, :]


def as_stitcher(stitching: Stitcher) -> Callable[[torch.Tensor], torch.Tensor]:
    """The stitching MLP as a callable (B,126) -> (B,65): a module or callable as it is, or
    a state dict with keys ``mlp.{0,2,4,6}.{weight,bias}`` loaded into LivePortrait's MLP."""
    if isinstance(stitching, Mapping):
        net = StitchingMLP(STITCH)
        try:
            net.load_state_dict(dict(stitching), strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                "the stitching weights do not fit LivePortrait's stitching MLP "
                "(Linear 126-128-128-64-65, keys mlp.0/2/4/6.weight|bias): "
                f"{str(exc).splitlines()[0]}") from None
        return net.eval()
    if not callable(stitching):
        raise ExpressionShapeError("stitching must be the stitching MLP (a module or callable "
                                   f"(B,126) -> (B,65)) or its state dict, got "
                                   f"{type(stitching).__name__}")
    return stitching


def stitch_keypoints(stitching: Stitcher, x_s: torch.Tensor, x_d: torch.Tensor,
                     per_frame: bool = False) -> torch.Tensor:
    """x_d + MLP(x_s, x_d): the 63 per-keypoint deltas, then the shared (dx, dy).

    ``per_frame`` runs the MLP one frame at a time, as the reference does (a batched
    matrix product may round differently in the last bit)."""
    net = as_stitcher(stitching)
    if x_s.shape != x_d.shape or x_d.dim() != 3 or x_d.shape[1:] != (21, 3):
        raise ExpressionShapeError(f"stitching needs x_s and x_d of the same shape (T,21,3), "
                                   f"got {tuple(x_s.shape)} and {tuple(x_d.shape)}")
    if not per_frame:
        return stitch(net, x_s, x_d)
    return torch.cat([stitch(net, x_s[i:i + 1], x_d[i:i + 1]) for i in range(x_d.shape[0])])
