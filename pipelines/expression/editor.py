"""The Expression Editor (AdvancedLivePortrait ``ExpressionEditor.run``) on plain parameters.

:func:`build_expression` makes the expression set (EXP_DATA) from sliders, an optional
sample and an optional set to add; it does not depend on the source. :func:`edit` applies
it to a source (one frame or T frames, the same set on each) and returns the edited
parameters together with the driving keypoints as the reference forms them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .expset import NUM_KP, ExpressionSet
from .keypoint_forms import (Stitcher, editor_keypoints, rotation_matrix, source_keypoints,
                             stitch_keypoints)
from .mixing import Mix, faded_expression, mix_sample
from .modes import check_mode
from .params import FaceParams
from .sliders import Sliders, apply_sliders


def build_expression(sliders: Sliders = Sliders(), sample: Optional[FaceParams] = None,
                     mix: Mix = Mix(), add: Optional[ExpressionSet] = None) -> ExpressionSet:
    """The editor's EXP_DATA: sample parts (if a sample is given), then the sliders, then
    ``add``. ``mix.src_ratio`` plays no role here (it acts on the source in :func:`edit`)."""
    rotation = [sliders.rotate_pitch, -sliders.rotate_yaw, sliders.rotate_roll]
    e = torch.zeros(NUM_KP, 3)
    if sample is not None:
        e, rotation = mix_sample(e, rotation, sample, mix)
    e, rotation = apply_sliders(e, rotation, sliders)
    es = ExpressionSet(e, torch.tensor([float(a) for a in rotation], dtype=torch.float32), 0, 0)
    return es if add is None else es + add


@dataclass(frozen=True)
class EditResult:
    """What :func:`edit` gives (T = the source's frames).

    expression: the ExpressionSet made (the node's save_exp / motion_link entry).
    params: the edited FaceParams: exp = src_ratio·exp (keypoint 5 full) + e, angles + r,
        scale·(1+s), t + t. Rendering them with LivePortrait's usual composition gives the
        usual form; ``x_d`` is the reference editor's own form (see keypoint_forms).
    s_exp (T,21,3), angles (T,3) degrees, R (T,3,3): the intermediate values.
    x_s (T,21,3): the source keypoints; x_d (T,21,3): driving keypoints before stitching;
    x_d_stitched: after stitching (None when no stitching MLP was given).
    """

    expression: ExpressionSet
    params: FaceParams
    s_exp: torch.Tensor
    angles: torch.Tensor
    R: torch.Tensor
    x_s: torch.Tensor
    x_d: torch.Tensor
    x_d_stitched: Optional[torch.Tensor]


@torch.no_grad()
def edit(source: FaceParams, sliders: Sliders = Sliders(), sample: Optional[FaceParams] = None,
         mix: Mix = Mix(), add: Optional[ExpressionSet] = None, mode: str = "default",
         stitching: Optional[Stitcher] = None) -> EditResult:
    """Edit ``source`` as the Expression Editor does.

    The editor's maths have no reference defect, so both modes compute the same values;
    "reference" runs the stitching MLP one frame at a time as the reference does.
    """
    check_mode(mode)
    es = build_expression(sliders, sample, mix, add)
    faded = faded_expression(source, mix.src_ratio)
    s_exp = faded + source.kp
    angles = source.angles() + es.r
    R = rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    x_d = editor_keypoints(source.scale, es.s, s_exp + es.e, R, source.t)
    x_s = source_keypoints(source)
    stitched = None if stitching is None else stitch_keypoints(
        stitching, x_s, x_d, per_frame=mode == "reference")
    params = source.replace(exp=faded + es.e, pitch=angles[:, 0], yaw=angles[:, 1],
                            roll=angles[:, 2], scale=source.scale * (1 + es.s),
                            t=source.t + es.t)
    return EditResult(es, params, s_exp, angles, R, x_s, x_d, stitched)
