"""Per-frame composition: expression states over a source, with an optional driving video.

This is AdvancedLivePortrait's ``AdvancedLivePortrait.run`` between parsing and warping.
For output frame i (source frame j = min(i, N_src - 1), state C = track frame i)::

    E  = kp_j + exp_j + C.e  [+ retargeting]  [+ exp_drv_i - exp_drv_0]
    r  = C.r                                  [+ pose_drv_i - pose_drv_0]
    S  = scale_j + C.s
    Tr = t_j + C.t  (on x, y and z)           [+ t_drv_i - t_drv_0]
    x_d = S · (E @ R(pose_j + r)) + Tr;  x_d' = stitching(x_s_j, x_d)

The driving terms apply while i < N_drv (the driving scale is not used). Retargeting adds
``eyes · exp_drv_0[k]`` (k = 11, 13, 15, 16) and ``mouth · exp_drv_0[k]`` (k = 14, 17, 19,
20): on every frame in default mode; in reference mode only where the reference has it
(image source, frames >= 1). :func:`apply_offsets` is the same composition as plain
parameters, for editing any T-frame motion (a driving video's, Ditto's, JoyVASA's).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from .errors import ExpressionError
from .expset import ExpressionSet, ExpressionTrack
from .keyframes import Keyframes
from .keypoint_forms import (Stitcher, frame_keypoints, rotation_matrix, source_keypoints,
                             stitch_keypoints)
from .mixing import MOUTH_KP
from .modes import check_mode
from .params import FaceParams
from .script import Script, parse_script

RETARGET_EYES_KP = (11, 13, 15, 16)   # the animate node's eye keypoints (not the editor's)
RETARGET_MOUTH_KP = MOUTH_KP


@dataclass(frozen=True)
class AnimateSettings:
    """retarget_eyes / retarget_mouth (0..1): how much of the driving video's first-frame
    eye / mouth expression the source takes on. animate_without_vid: let the script set
    the length (else the source / driving video does). mode: "default" or "reference"."""

    retarget_eyes: float = 0.0
    retarget_mouth: float = 0.0
    animate_without_vid: bool = True
    mode: str = "default"

    def __post_init__(self):
        check_mode(self.mode)
        for name in ("retarget_eyes", "retarget_mouth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ExpressionError(f"'{name}' must be a finite number, got {v!r}")


@dataclass(frozen=True)
class AnimationResult:
    """F output frames. params: the composed FaceParams (kp of the source frame used;
    exp, angles, scale and t with every term added), source_index (F,) which source
    frame each output frame uses, state: the expression track, and the reference's
    intermediate values: frame_e (F,21,3) = E, frame_r (F,3), frame_s (F,), frame_t (F,3),
    angles (F,3), R (F,3,3), x_s, x_d, x_d_stitched (F,21,3; stitched None without an
    MLP). notes: things the caller should tell the user."""

    params: FaceParams
    source_index: torch.Tensor
    state: ExpressionTrack
    frame_e: torch.Tensor
    frame_r: torch.Tensor
    frame_s: torch.Tensor
    frame_t: torch.Tensor
    angles: torch.Tensor
    R: torch.Tensor
    x_s: torch.Tensor
    x_d: torch.Tensor
    x_d_stitched: Optional[torch.Tensor]
    notes: tuple = ()


def frame_count(n_source: int, n_driving: int, script_length: int,
                animate_without_vid: bool) -> int:
    """max(N_drv, N_src), and at least the script's length with animate_without_vid."""
    n = max(int(n_driving), int(n_source))
    return max(n, int(script_length)) if animate_without_vid else n


def _retargeting(n: int, n_source: int, driving: Optional[FaceParams],
                 settings: AnimateSettings) -> tuple:
    """(F,21,3) retargeting term per output frame, and notes."""
    term = torch.zeros(n, 21, 3)
    wanted = settings.retarget_eyes != 0 or settings.retarget_mouth != 0
    if driving is None:
        note = "eye/mouth retargeting needs a driving video; it was ignored"
        return term, (note,) if wanted else ()
    d0 = driving.exp[0]
    rows = torch.zeros(21, 3)
    for keypoints, factor in ((RETARGET_EYES_KP, settings.retarget_eyes),
                              (RETARGET_MOUTH_KP, settings.retarget_mouth)):
        for k in keypoints:
            rows[k] = d0[k] * factor
    if settings.mode == "default":
        return term + rows, ()
    if n_source == 1:
        term[1:] = rows  # the reference adds it to its stored source after frame 0
        return term, ()
    notes = ("reference mode: eye/mouth retargeting does nothing with a video source "
             "(as in AdvancedLivePortrait); use the default mode",) if wanted else ()
    return term, notes


def _driving_deltas(n: int, driving: Optional[FaceParams]) -> tuple:
    """(exp, pose, t) change of driving frame i from driving frame 0, zero from N_drv on."""
    d_exp, d_pose, d_t = torch.zeros(n, 21, 3), torch.zeros(n, 3), torch.zeros(n, 3)
    if driving is not None:
        m = min(n, len(driving))
        pose = driving.angles()
        d_exp[:m] = driving.exp[:m] - driving.exp[0]
        d_pose[:m] = pose[:m] - pose[0]
        d_t[:m] = driving.t[:m] - driving.t[0]
    return d_exp, d_pose, d_t


@torch.no_grad()
def animate(source: FaceParams, track: ExpressionTrack, driving: Optional[FaceParams] = None,
            settings: AnimateSettings = AnimateSettings(),
            stitching: Optional[Stitcher] = None) -> AnimationResult:
    """Compose ``len(track)`` output frames (see the module docstring). Choose the length
    with :func:`frame_count` and make the track with :meth:`Script.expand` or
    :func:`~.keyframes.expand_keyframes` (or use :func:`animate_script`)."""
    n = len(track)
    if n == 0:
        raise ExpressionError("nothing to animate: the expression track has no frames "
                              "(a still image without a driving video needs "
                              "animate_without_vid and a script)")
    j = torch.clamp(torch.arange(n), max=len(source) - 1)
    src = source.select(j)
    retarget, notes = _retargeting(n, len(source), driving, settings)
    d_exp, d_pose, d_t = _driving_deltas(n, driving)
    # the additions in the reference's order, so float32 rounding matches
    frame_e = src.kp + src.exp + retarget + track.e + d_exp
    frame_r = track.r + d_pose
    frame_s = src.scale + track.s.float()[:, None]
    frame_t = src.t + track.t.float()[:, None] + d_t
    angles = src.angles() + frame_r
    R = rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    x_d = frame_keypoints(frame_s, frame_e, R, frame_t)
    x_s = source_keypoints(src)
    stitched = None if stitching is None else stitch_keypoints(
        stitching, x_s, x_d, per_frame=settings.mode == "reference")
    params = src.replace(exp=src.exp + retarget + track.e + d_exp, pitch=angles[:, 0],
                         yaw=angles[:, 1], roll=angles[:, 2], scale=frame_s, t=frame_t)
    return AnimationResult(params, j, track, frame_e, frame_r, frame_s[:, 0], frame_t, angles,
                           R, x_s, x_d, stitched, tuple(notes))


def animate_script(source: FaceParams, script: Union[str, Script, Keyframes],
                   sets: Sequence[ExpressionSet] = (), driving: Optional[FaceParams] = None,
                   settings: AnimateSettings = AnimateSettings(),
                   stitching: Optional[Stitcher] = None, easing: str = "linear") -> AnimationResult:
    """Parse (if text), size by :func:`frame_count`, expand and compose, as the node does.
    ``script`` may also be parsed :class:`~.keyframes.Keyframes` (same length rules)."""
    if isinstance(script, str):
        script = parse_script(script, sets, settings.mode, easing)
    n = frame_count(len(source), 0 if driving is None else len(driving), script.length,
                    settings.animate_without_vid)
    return animate(source, script.expand(n), driving, settings, stitching)


def apply_offsets(params: FaceParams, offsets: Union[ExpressionSet, ExpressionTrack]) -> FaceParams:
    """Every frame of a T-frame motion moved by an expression set (the same set on each
    frame) or a track (frame i gets track frame i; a shorter track holds its last set):
    exp + e, (pitch, yaw, roll) + r, scale + s, t + t on all three components (the script
    composition's rules). kp is kept."""
    n = len(params)
    track = ExpressionTrack.constant(offsets, n) if isinstance(offsets, ExpressionSet) \
        else offsets.held(n)
    angles = params.angles() + track.r
    return params.replace(exp=params.exp + track.e, pitch=angles[:, 0], yaw=angles[:, 1],
                          roll=angles[:, 2], scale=params.scale + track.s.float()[:, None],
                          t=params.t + track.t.float()[:, None])
