"""The reference's driving keypoints (JoyVASA ``LivePortraitPipeline.execute``), for the
golden tests and for a renderer that wants JoyVASA's own composition.

It is LivePortrait's relative formula with the first generated frame as reference; the
differences from the official composition live in ``liveportrait.keypoints.compose_driving``
(``formula="joyvasa"``):

* lip rows [6,12,14,17,19,20] are the generated *absolute* expression in regions
  "all"/"exp" (the other rows are relative: ``exp_s + exp_i − exp_0``);
* scale (``scale_s·scale_i/scale_0``) and translation (``t_s + t_i − t_0``, tz = 0) are
  relative in *every* region, also "exp", "lip" and "eyes";
* region "lip" moves only the lip rows (relative); "eyes" moves no expression at all (the
  reference has no eyes branch) and "pose"/"eyes" keep the source's expression;
* the relative-motion flag only switches the expression-friendly hull multiplier on;
  the formula itself is always relative;
* the final ``x_s + (x_d − x_s)·driving_multiplier`` uses the CLI default 1.10.
Stitching and lip normalisation are not included (they need LivePortrait's networks; the
pack's ``finish_driven`` applies them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..core.errors import ShapeError
from ..liveportrait.keypoints import (
    DriveOptions, PoseExp, apply_driving_multiplier, compose_driving, compose_keypoints,
    expression_friendly_multiplier)

REFERENCE_REGIONS = ("all", "exp", "pose", "lip", "eyes")


@dataclass(frozen=True)
class ReferenceDrive:
    """The reference CLI's driving flags (defaults = ArgumentConfig)."""

    region: str = "all"
    relative: bool = False
    expression_friendly: bool = True
    driving_multiplier: float = 1.10

    def __post_init__(self):
        if self.region not in REFERENCE_REGIONS:
            raise ShapeError(f"animation region must be one of {REFERENCE_REGIONS}, got {self.region!r}")


def reference_keypoints(kp_s: torch.Tensor, src: PoseExp, drv: PoseExp,
                        opts: ReferenceDrive = ReferenceDrive()) -> tuple:
    """Source canonical keypoints kp_s (1,21,3) and pose src (1 frame), driving motion drv
    (T frames) -> (x_s (1,21,3), kp_driving (T,21,3), hull multiplier or None): LivePortrait's
    composition with ``formula="joyvasa"``, then the reference's last steps."""
    n = drv.R.shape[0]
    x_s = compose_keypoints(kp_s, src.R, src.exp, src.scale, src.t)
    first = PoseExp(*(v[:1].expand_as(v) for v in (drv.R, drv.exp, drv.scale, drv.t)))
    whole = PoseExp(src.R.expand(n, 3, 3), src.exp.reshape(1, 21, 3).expand(n, 21, 3),
                    src.scale.expand(n, 1), src.t.expand(n, 3))
    new = compose_driving(whole, drv, first, DriveOptions(region=opts.region, formula="joyvasa"))
    x_d = compose_keypoints(kp_s.expand(n, -1, -1), new.R, new.exp, new.scale, new.t)
    mult: Optional[float] = None
    if opts.relative and opts.expression_friendly:
        mult = expression_friendly_multiplier(x_s[0], x_d[0])
        x_d = (x_d - x_d[:1]) * mult + x_s
    return x_s, apply_driving_multiplier(x_s, x_d, opts.driving_multiplier), mult
