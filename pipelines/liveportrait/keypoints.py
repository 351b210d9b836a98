"""LivePortrait's keypoint maths, shared by every family that renders through it.

Conventions (../shared/spec/liveportrait.md §1.4):
* pose angles are in degrees; pitch turns about x, yaw about y, roll about z;
* rotation matrices use the official *transposed* convention ``R = (Rz·Ry·Rx)ᵀ`` and
  keypoints are row vectors rotated as ``kp @ R``;
* keypoints live in the normalised feature-volume frame (x right, y down, z in).
"""
from __future__ import annotations

import torch

NUM_BINS = 66
NUM_KP = 21

# LivePortrait keypoint groups (spec Appendix B; Ditto §3.7.1)
LIP_KP = (6, 12, 14, 17, 19, 20)
EYE_KP = (11, 13, 15, 16, 18)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """66-bin pose logits (..., 66) -> degrees (..., 1): 3·E[bin] − 97.5."""
    idx = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    prob = torch.softmax(logits, dim=-1)
    return (prob * idx).sum(dim=-1, keepdim=True) * 3 - 97.5


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees, each (B,) or (B,1) -> (B,3,3) in the transposed convention (Rz·Ry·Rx)ᵀ."""
    p, y, r = (torch.deg2rad(a.reshape(-1)) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)
    rx = torch.stack([one, zero, zero,
                      zero, p.cos(), -p.sin(),
                      zero, p.sin(), p.cos()], dim=1).reshape(-1, 3, 3)
    ry = torch.stack([y.cos(), zero, y.sin(),
                      zero, one, zero,
                      -y.sin(), zero, y.cos()], dim=1).reshape(-1, 3, 3)
    rz = torch.stack([r.cos(), -r.sin(), zero,
                      r.sin(), r.cos(), zero,
                      zero, zero, one], dim=1).reshape(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


def compose_keypoints(kp: torch.Tensor, R: torch.Tensor, exp: torch.Tensor,
                      scale: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``scale·(kp @ R + exp)`` then ``+ t`` on x and y only (tz is never used).

    kp, exp: (B,21,3) or (B,63); R: (B,3,3); scale: (B,1); t: (B,3).
    """
    b = R.shape[0]
    kp = kp.reshape(b, -1, 3)
    exp = exp.reshape(b, -1, 3)
    x = scale.reshape(b, 1, 1) * (kp @ R + exp)
    return torch.cat([x[..., :2] + t.reshape(b, 1, 3)[..., :2], x[..., 2:]], dim=-1)


def transform_keypoint(info: dict) -> torch.Tensor:
    """Keypoints from a motion-extractor style dict.

    ``info`` holds ``kp`` and ``exp`` ((B,63) or (B,21,3)), ``scale`` (B,1), ``t`` (B,3) and
    ``pitch``/``yaw``/``roll`` as either 66-bin logits (B,66) or degrees (B,1)/(B,).
    """
    angles = []
    for key in ("pitch", "yaw", "roll"):
        a = info[key]
        angles.append(bins_to_degrees(a) if a.shape[-1] == NUM_BINS else a)
    R = rotation_matrix(*angles)
    return compose_keypoints(info["kp"], R, info["exp"], info["scale"], info["t"])
