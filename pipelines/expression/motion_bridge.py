"""Between the pack's values (SOURCE, MOTION) and the expression maths (FaceParams).

The renderer poses keypoints one way for every MOTION, LivePortrait's own form
``x = scale·(kp @ R + exp)``, then ``t`` on x and y. Three helpers bring everything into
that form so that one Stitch/Warp/Decode renders every edit:

* :func:`source_params`: a SOURCE's motion-extractor output as FaceParams (degrees).
* :func:`motion_params`: any MOTION as *absolute* FaceParams for a SOURCE. A driving
  motion (a driving video's, JoyVASA's) only says how the driver moved; what the viewer
  sees is that motion composed with the source. A constant offset added to a relative
  driver cancels out (frame i is drawn as source + driver_i − driver_0), so an edit of a
  driving motion must act on the composed result: ``liveportrait.drive.as_absolute``
  composes it as the Stitch stage does, without stitching, and the edit is added to that.
  Stitch then stitches the result (a producer's multiplier other than 1 is thus applied
  before stitching rather than after it: a small difference near the crop's border).
* :func:`keypoint_params`: parameters whose LivePortrait form reproduces given keypoints
  (the expression absorbs the difference). This is how the reference's own keypoint forms
  (expression inside the rotation, ``t`` on all three axes; see keypoint_forms) travel in
  a MOTION in "reference" mode.
"""
from __future__ import annotations

import torch

from ..core.errors import ShapeError
from ..core.motion import Motion
from ..core.types import MotionInfo, Source
from ..liveportrait import keypoints as kpm
from ..liveportrait.drive import as_absolute
from .params import FaceParams


def source_params(info: MotionInfo) -> FaceParams:
    """Motion-extractor output (N frames) -> FaceParams with angles in degrees."""
    kp, pe, deg = kpm.decode_info(info)
    return FaceParams(kp=kp, exp=pe.exp, pitch=deg[:, 0], yaw=deg[:, 1], roll=deg[:, 2],
                      scale=pe.scale, t=pe.t)


def keypoint_params(params: FaceParams, x_d: torch.Tensor) -> FaceParams:
    """``params`` with the expression that makes LivePortrait's form give ``x_d`` (T,21,3).
    Pose, scale and t are kept, so later offsets (a preset, a rotation) still act on the
    head as usual."""
    if tuple(x_d.shape) != (len(params), 21, 3):
        raise ShapeError(f"keypoints {tuple(x_d.shape)} do not match {len(params)} frames of "
                         "face parameters")
    R = kpm.rotation_matrix(params.pitch, params.yaw, params.roll)
    return params.replace(exp=kpm.expression_for(params.kp, R, params.scale, params.t, x_d.float()))


@torch.no_grad()
def motion_params(source: Source, motion: Motion) -> FaceParams:
    """Any MOTION as absolute FaceParams for ``source`` (one row per motion frame; kp is the
    canonical keypoints of each frame's source frame), by the renderer's own reading of it
    (``drive.as_absolute``: a driving motion composed with the source as Stitch composes it)."""
    absolute = as_absolute(source, motion)      # refuses a SOURCE that does not fit
    index = motion.source_index.long()
    rows = source.motion.select(index if len(source.motion) > 1 else torch.zeros_like(index))
    return source_params(rows).replace(exp=absolute.exp, pitch=absolute.pitch, yaw=absolute.yaw,
                                       roll=absolute.roll, scale=absolute.scale, t=absolute.t)


def render_params(result, mode: str) -> FaceParams:
    """What a MOTION carries for an :class:`~.editor.EditResult` or
    :class:`~.animate.AnimationResult`. Default mode: its parameters in LivePortrait's own
    form, so an all-zero edit renders the source itself and an expression means the same
    on a still as on any motion (apply_offsets adds it in that form). Reference mode: the
    keypoints the reference forms (``result.x_d``), exactly."""
    return result.params if mode == "default" else keypoint_params(result.params, result.x_d)


def absolute_motion(params: FaceParams, like: Motion) -> Motion:
    """``like`` with its frames replaced by ``params`` as absolute motion (fps, source
    frames, paste-back edge and retargeting ratios kept; the producer's re-derivation is
    dropped, since it would undo the edit)."""
    return like.replace(scale=params.scale, pitch=params.pitch, yaw=params.yaw,
                        roll=params.roll, t=params.t, exp=params.exp, kind="absolute",
                        driving=None, origin=f"{like.origin}+expression", restitch=None)


def still_motion(params: FaceParams, source_index: torch.Tensor, fps: float) -> Motion:
    """Absolute MOTION of edited source frames (one row per ``source_index`` entry)."""
    return Motion(scale=params.scale, pitch=params.pitch, yaw=params.yaw, roll=params.roll,
                  t=params.t, exp=params.exp, fps=fps, source_index=source_index.long(),
                  kind="absolute", origin="expression")
