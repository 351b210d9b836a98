"""Mix two MOTIONs on one source: head pose from one, lips (or eyes, or the whole
expression) from the other, e.g. a driving video's head with JoyVASA's or Ditto's lips.

Motions of different kinds cannot be mixed as raw numbers (a driving video's expression
is the driver's own face, Ditto's is already the source's), so each is first resolved
to what it means for this source: the source's pose and expression per frame, by the
same composition the Stitch stage uses (keypoints.driven_pose_exp). The mix of the two
is then an absolute motion for the source, rendered by the same Stitch/Warp/Decode.

Both are resolved on the source frames the pose motion walks (a video source follows
the head's motion), so the lips land on the frame they are rendered with.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.choices import FRAME_ORDERS, MIX_LENGTHS, MIX_PARTS
from ..core.errors import ShapeError, TalkingHeadError
from ..core.motion import Motion
from ..core.timeline import frame_order
from ..core.types import Source
from . import keypoints as kpm
from .drive import as_absolute, check_fits

FPS_TOLERANCE = 1e-3


@dataclass(frozen=True)
class MixSettings:
    """part: what the expression motion gives ("lips", "expression", "eyes"). weight:
    0 = the pose motion's own, 1 = all of the expression motion's. length: which motion
    sets the clip's length ("expression motion", "pose motion", "shorter"). fit: how
    the other one is stretched to it ("ping-pong", "cycle", "hold" its last frame)."""

    part: str = "lips"
    weight: float = 1.0
    length: str = "expression motion"
    fit: str = "ping-pong"

    def __post_init__(self):
        for name, value, allowed in (("part", self.part, MIX_PARTS), ("length", self.length, MIX_LENGTHS),
                                     ("fit", self.fit, FRAME_ORDERS)):
            if value not in allowed:
                raise ShapeError(f"Mix Motion: {name} must be one of {', '.join(allowed)}, got {value!r}")
        if not 0.0 <= float(self.weight) <= 1.0:
            raise ShapeError(f"Mix Motion: weight must be between 0 and 1, got {self.weight}")


def part_rows(part: str) -> list:
    """Keypoint rows of the expression that ``part`` takes from the expression motion."""
    return {"lips": list(kpm.LIP_KP), "eyes": list(kpm.EYE_KP),
            "expression": list(range(kpm.NUM_KP))}[part]


def resolve(source: Source, motion: Motion) -> tuple:
    """What ``motion`` means for ``source``, per frame: (pitch, yaw, roll) degrees (T,),
    scale (T,1), t (T,3), exp (T,21,3), as the renderer reads it (``drive.as_absolute``)."""
    m = as_absolute(source, motion)
    return (m.pitch, m.yaw, m.roll), m.scale, m.t, m.exp


def _lengths(n_pose: int, n_expr: int, settings: MixSettings) -> int:
    return {"expression motion": n_expr, "pose motion": n_pose,
            "shorter": min(n_pose, n_expr)}[settings.length]


def mix_motions(source: Source, pose: Motion, expression: Motion,
                settings: MixSettings = MixSettings()) -> Motion:
    """An absolute MOTION for ``source``: head pose (rotation, scale, translation) and the
    rest of the expression from ``pose``, ``settings.part`` of the expression moved toward
    ``expression``'s by ``settings.weight``."""
    if abs(pose.fps - expression.fps) > FPS_TOLERANCE:
        raise TalkingHeadError(
            f"Mix Motion: the pose motion runs at {pose.fps:g} fps and the expression motion at "
            f"{expression.fps:g} fps; make them at the same rate (e.g. set the audio motion's fps "
            f"to {pose.fps:g}).")
    for m in (pose, expression):
        check_fits(source, m)
    n = _lengths(len(pose), len(expression), settings)
    pose = pose.select(torch.from_numpy(frame_order(len(pose), n, settings.fit)))
    expression = expression.select(torch.from_numpy(frame_order(len(expression), n, settings.fit)))
    expression = expression.replace(source_index=pose.source_index.clone())
    angles, scale, t, exp = resolve(source, pose)
    exp_b = resolve(source, expression)[3]
    rows = part_rows(settings.part)
    mixed = exp.clone()
    mixed[:, rows] = exp[:, rows] + float(settings.weight) * (exp_b[:, rows] - exp[:, rows])
    return Motion(scale=scale.clone(), pitch=angles[0].clone(), yaw=angles[1].clone(),
                  roll=angles[2].clone(), t=t.clone(), exp=mixed, fps=pose.fps,
                  source_index=pose.source_index.clone(), kind="absolute", origin="mix",
                  crop_edge=pose.crop_edge)
