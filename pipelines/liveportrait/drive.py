"""MOTION -> KEYPOINTS for every motion producer (the Stitch stage).

A ``driving`` motion (a driving video's, JoyVASA's) is composed with the source by
LivePortrait's driving formula (keypoints.drive_keypoints); an ``absolute`` motion
(Ditto's, expression edits) already holds the source's pose and expression, so the driven
keypoints are the source's canonical keypoints posed by it. Both then get the same final
steps in the same order (keypoints.finish_driven): eye/lip retargeting, stitching, the
driving multiplier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..core.errors import ShapeError, TalkingHeadError
from ..core.motion import Motion
from ..core.types import Keypoints, ModelBundle, MotionInfo, Source
from . import keypoints as kpm
from .stitching import open_ratios

@dataclass(frozen=True)
class StitchOptions:
    """The Stitch stage's choices.

    relative / expression_friendly: None = what the motion's producer asked for (its
    DrivingSpec); ignored for absolute motion. region: which keypoint groups follow a
    driving motion ("all", "pose", "exp", "lip", "eyes"). multiplier: scales the motion
    (on top of the producer's). eye_open / lip_open: target open ratios for eye/lip
    retargeting (None = off).
    """

    stitching: bool = True
    relative: Optional[bool] = None
    expression_friendly: Optional[bool] = None
    region: str = "all"
    multiplier: float = 1.0
    eye_open: Optional[float] = None
    lip_open: Optional[float] = None


def _with_retarget_ratios(source: Source, motion: Motion, options: StitchOptions) -> Motion:
    """A copy of ``motion`` whose eye/lip ratios carry the retargeting targets."""
    if options.eye_open is None and options.lip_open is None:
        return motion
    eye_s, lip_s = open_ratios(source.landmarks, source.landmark_scheme)
    eye_s, lip_s = torch.nan_to_num(eye_s, 0.3), torch.nan_to_num(lip_s, 0.0)
    index = motion.source_index.long()
    pick = index if len(source) > 1 else torch.zeros_like(index)
    t = len(motion)
    eye = None if options.eye_open is None else torch.cat(
        [eye_s[pick], torch.full((t, 1), float(options.eye_open))], dim=1)
    lip = None if options.lip_open is None else torch.cat(
        [lip_s[pick], torch.full((t, 1), float(options.lip_open))], dim=1)
    return motion.replace(eye_ratio=eye, lip_ratio=lip, restitch=motion.restitch)


@torch.no_grad()
def motion_keypoints(motion: Motion, info: MotionInfo) -> Keypoints:
    """Raw keypoints of absolute motion: the canonical keypoints of each output frame's
    source frame (a one-frame source serves every frame) posed by the motion."""
    index = motion.source_index.long()
    kp, pe, _ = kpm.decode_info(info.select(index if len(info) > 1 else torch.zeros_like(index)))
    x_s = kpm.compose_keypoints(kp, pe.R, pe.exp, pe.scale, pe.t)
    R = kpm.rotation_matrix(motion.pitch, motion.yaw, motion.roll)
    x_d = kpm.compose_keypoints(kp, R, motion.exp, motion.scale, motion.t)
    return Keypoints(x_s=x_s, x_d=x_d, fps=motion.fps, source_index=index.clone(),
                     crop_edge=motion.crop_edge)


def check_fits(source: Source, motion: Motion) -> None:
    """Refuse a SOURCE without motion-extractor data, or one that is not the motion's."""
    if source.motion is None:
        raise TalkingHeadError("The SOURCE has no motion-extractor data: connect the renderer "
                               "models to Face Register.")
    if motion.n_source > len(source):
        raise ShapeError(f"the MOTION ({motion.origin}) refers to source frame {motion.n_source - 1} "
                         f"but the SOURCE has {len(source)} frames; connect the SOURCE the motion "
                         "was made for")


def keypoints_for(source: Source, motion: Motion, nets: ModelBundle,
                  options: StitchOptions = StitchOptions()) -> Keypoints:
    """KEYPOINTS of ``motion`` rendered on ``source``."""
    check_fits(source, motion)
    motion = _with_retarget_ratios(source, motion, options)
    opts = kpm.DriveOptions(
        region=options.region, stitching=options.stitching,
        eye_retargeting=options.eye_open is not None, lip_retargeting=options.lip_open is not None,
        driving_multiplier=float(options.multiplier))
    if motion.kind == "driving":
        spec = motion.driving
        opts.relative = spec.relative if options.relative is None else options.relative
        opts.expression_friendly = (spec.expression_friendly if options.expression_friendly is None
                                    else options.expression_friendly)
        opts.driving_multiplier *= spec.multiplier
        opts.driver_is_image = spec.driver_is_image
        opts.formula = spec.formula
        return kpm.drive_keypoints(source.motion, motion, opts, nets)
    kps = motion_keypoints(motion, source.motion)
    with torch.no_grad():
        kps.x_d = kpm.finish_driven(kps.x_s, kps.x_d, opts, nets, motion.eye_ratio, motion.lip_ratio)
    return kps


@torch.no_grad()
def as_absolute(source: Source, motion: Motion) -> Motion:
    """``motion`` as an absolute motion for ``source``: what the Stitch stage draws before
    stitching, as pose and expression. An absolute motion is returned as it is. A driving
    motion gets the pose its composition gives (its producer's relative/absolute choice,
    LivePortrait's or JoyVASA's formula) and the expression that reproduces the unstitched
    keypoints exactly (expression-friendly rescale, JoyVASA's own lips and the producer's
    multiplier included). Mixing and editing work on this form: offsets added to a
    driver's own motion would cancel against its first frame."""
    check_fits(source, motion)
    if motion.kind == "absolute":
        return motion
    spec = motion.driving
    opts = kpm.DriveOptions(relative=spec.relative, expression_friendly=spec.expression_friendly,
                            driver_is_image=spec.driver_is_image, formula=spec.formula, stitching=False)
    kp, _, pose = kpm.driven_pose_exp(source.motion, motion, opts)
    pitch, yaw, roll = kpm.angles_from_matrix(pose.R)
    x_d = keypoints_for(source, motion, None, StitchOptions(stitching=False)).x_d
    R = kpm.rotation_matrix(pitch, yaw, roll)
    exp = kpm.expression_for(kp, R, pose.scale, pose.t, x_d.to(R.dtype))
    return motion.replace(scale=pose.scale, pitch=pitch, yaw=yaw, roll=roll, t=pose.t, exp=exp,
                          kind="absolute", driving=None, restitch=None)

