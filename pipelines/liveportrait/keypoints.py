"""LivePortrait's keypoint maths, shared by every family that renders through it.

Conventions (../shared/spec/liveportrait.md §1.4):
* pose angles are in degrees; pitch turns about x, yaw about y, roll about z;
* rotation matrices use the official *transposed* convention ``R = (Rz·Ry·Rx)ᵀ`` and
  keypoints are row vectors rotated as ``kp @ R``;
* keypoints live in the normalised feature-volume frame (x right, y down, z in).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..core.choices import ANIMATION_REGIONS
from ..core.errors import ShapeError
from ..core.motion import DrivingSpec, Motion
from ..core.types import Keypoints, MotionInfo
from .hull import convex_hull_volume
from .stitching import retarget_eye, retarget_lip, stitch

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


def expression_for(kp: torch.Tensor, R: torch.Tensor, scale: torch.Tensor, t: torch.Tensor,
                   x: torch.Tensor) -> torch.Tensor:
    """The expression (B,21,3) that makes :func:`compose_keypoints` give ``x`` (B,21,3) with
    this kp, R, scale and t: ``(x − (t_x, t_y, 0)) / scale − kp @ R``."""
    b = R.shape[0]
    if bool((scale.abs() < 1e-6).any()):
        raise ShapeError("a frame has scale 0: its keypoints cannot be expressed as motion "
                         "(the motion extractor failed on that frame)")
    shift = torch.zeros_like(x)
    shift[..., :2] = t.reshape(b, 1, 3)[..., :2]
    return (x - shift) / scale.reshape(b, 1, 1) - kp.reshape(b, -1, 3) @ R


# ---------------------------------------------------------------------------------------
# driving composition (../shared/spec/liveportrait.md §1.8)

REGIONS = ANIMATION_REGIONS
FORMULAS = ("liveportrait", "joyvasa")

# lip_array.pkl: the "neutral" expression subtracted from a single driving image (§1.8, App. A)
LIP_ARRAY = (
    (-9.45240e-05, 2.42220e-04, -4.00974e-05), (2.08596e-04, 4.68054e-04, 1.27464e-05),
    (-1.24602e-04, 3.24972e-04, 4.42500e-06), (1.19652e-04, -4.56624e-04, 5.40852e-05),
    (-2.65254e-04, -7.45980e-05, -1.55280e-05), (-3.34884e-05, -1.83036e-04, -3.49404e-06),
    (-4.75428e-07, -4.52466e-07, 1.59498e-06), (-5.41296e-04, 2.63280e-03, 7.24860e-06),
    (-1.16940e-05, 5.00502e-06, 9.98880e-06), (8.02860e-07, 5.19132e-06, -4.09344e-04),
    (1.66878e-04, -1.98150e-05, -8.85480e-05), (-1.51536e-05, 8.25060e-05, 5.94012e-06),
    (-2.61054e-07, 2.75910e-06, 2.21028e-06), (-6.62820e-05, -6.82860e-05, -3.45318e-06),
    (-8.32620e-04, -1.79592e-03, -2.59176e-06), (6.97140e-06, 3.65514e-05, -1.89780e-06),
    (-4.80876e-06, 7.11480e-06, -1.03236e-05), (-6.36840e-04, -1.16610e-03, 5.62314e-05),
    (2.83290e-04, -1.45656e-05, 1.09746e-05), (-4.16022e-06, -1.50906e-02, -2.54940e-03),
    (2.22474e-04, 5.62788e-03, 2.72646e-03),
)


def expression_mask(region: str) -> torch.Tensor:
    """(21,3) bool: the expression entries that follow the driver.

    "all"/"exp" use the official absolute-mode rows (1,2,6,11-20 xyz; 3,4 y; 5 z; 8 z;
    9 yz); "lip" and "eyes" their keypoint rows. Relative driving of an image source
    ignores this for "all"/"exp" and moves every entry.
    """
    m = torch.zeros(NUM_KP, 3, dtype=torch.bool)
    if region in ("all", "exp"):
        m[[1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]] = True
        m[3:5, 1] = m[5, 2] = m[8, 2] = True
        m[9, 1:] = True
    elif region == "lip":
        m[list(LIP_KP)] = True
    elif region == "eyes":
        m[list(EYE_KP)] = True
    return m


@dataclass
class PoseExp:
    """Decoded LivePortrait motion of N frames: R (N,3,3), exp (N,21,3), scale (N,1), t (N,3)."""

    R: torch.Tensor
    exp: torch.Tensor
    scale: torch.Tensor
    t: torch.Tensor

    def frame(self, i: int) -> "PoseExp":
        return PoseExp(self.R[i:i + 1], self.exp[i:i + 1], self.scale[i:i + 1], self.t[i:i + 1])


def decode_info(info: MotionInfo) -> tuple:
    """Raw motion-extractor output -> (canonical kp (N,21,3), PoseExp, degrees (N,3))."""
    deg = torch.cat([bins_to_degrees(getattr(info, k)) for k in ("pitch", "yaw", "roll")], dim=1)
    R = rotation_matrix(deg[:, 0], deg[:, 1], deg[:, 2])
    return info.kp, PoseExp(R, info.exp, info.scale, info.t), deg


def motion_from_info(info: MotionInfo, fps: float, source_index=None,
                     driving: Optional[DrivingSpec] = None, origin: str = "video") -> Motion:
    """Driving frames' raw M output -> a driving :class:`Motion` (pose in degrees)."""
    _, pe, deg = decode_info(info)
    n = len(info)
    idx = torch.zeros(n, dtype=torch.long) if source_index is None else torch.as_tensor(source_index)
    return Motion(scale=pe.scale, pitch=deg[:, 0], yaw=deg[:, 1], roll=deg[:, 2], t=pe.t,
                  exp=pe.exp, fps=fps, source_index=idx, kind="driving", origin=origin,
                  driving=driving or DrivingSpec())


def motion_pose_exp(motion: Motion) -> PoseExp:
    return PoseExp(rotation_matrix(motion.pitch, motion.yaw, motion.roll), motion.exp,
                   motion.scale, motion.t)


def rts_smooth(x: torch.Tensor, observation_variance: float,
               transition_variance: float = 1e-5) -> torch.Tensor:
    """Kalman filter + RTS smoother of a (T,D) sequence with identity dynamics, isotropic
    covariances and initial state x[0] with unit covariance (pykalman's defaults, as the
    official video-to-video smoothing uses). The gains are the same for every dimension."""
    x = x.double()
    n = x.shape[0]
    mean, var = torch.empty_like(x), torch.empty(n, dtype=torch.float64)
    prior_var = torch.empty(n, dtype=torch.float64)
    m, p = x[0], 1.0
    for i in range(n):
        p_pred = p if i == 0 else p + transition_variance
        gain = p_pred / (p_pred + observation_variance)
        m = m + gain * (x[i] - m)
        p = (1 - gain) * p_pred
        mean[i], var[i], prior_var[i] = m, p, p_pred
    out = mean.clone()
    for i in range(n - 2, -1, -1):
        j = var[i] / prior_var[i + 1]
        out[i] = mean[i] + j * (out[i + 1] - mean[i])
    return out


@dataclass
class DriveOptions:
    """How driving motion moves the source keypoints (official CLI defaults).

    relative: relative motion (driver frame 0 is the reference) or absolute.
    region: "all", "pose", "exp", "lip" or "eyes".
    expression_friendly: scale motion by the hull-volume ratio (image source, video driver).
    stitching / eye_retargeting / lip_retargeting: the MLPs of Algorithm 1.
    normalize_lip: close the source's open lips first (needs ``source_lip_ratio``).
    driving_multiplier: final x_d = x_s + (x_d - x_s) * m.
    driver_is_image: one driving image (expression relative to ``LIP_ARRAY``, pose kept).
    smooth_variance: video sources: RTS-smooth the driven exp and R (official 3e-7).
    formula: "liveportrait" (the official pipeline) or "joyvasa": the composition JoyVASA's
        pipeline uses, always relative to the first driving frame (``relative`` then only
        switches the expression-friendly rescaling on); the lip rows take the driver's
        absolute expression in regions all/exp; scale and translation follow the driver
        in every region; region "lip" moves only the lip rows, "eyes" no expression.
    """

    relative: bool = True
    region: str = "all"
    expression_friendly: bool = True
    stitching: bool = True
    eye_retargeting: bool = False
    lip_retargeting: bool = False
    normalize_lip: bool = False
    lip_normalize_threshold: float = 0.03
    driving_multiplier: float = 1.0
    driver_is_image: bool = False
    smooth_variance: Optional[float] = None
    formula: str = "liveportrait"

    def __post_init__(self):
        if self.region not in REGIONS:
            raise ShapeError(f"animation region must be one of {REGIONS}, got '{self.region}'")
        if self.formula not in FORMULAS:
            raise ShapeError(f"driving formula must be one of {FORMULAS}, got '{self.formula}'")


def _smooth(x: torch.Tensor, variance: float) -> torch.Tensor:
    return rts_smooth(x.reshape(x.shape[0], -1), variance).to(x.dtype).reshape(x.shape)


def _compose_joyvasa(src: PoseExp, drv: PoseExp, drv0: PoseExp, region: str) -> PoseExp:
    """JoyVASA's composition (see DriveOptions.formula)."""
    R = (drv.R @ drv0.R.transpose(1, 2)) @ src.R if region in ("all", "pose") else src.R
    relative = src.exp + (drv.exp - drv0.exp)
    lips = list(LIP_KP)
    exp = src.exp.expand_as(relative).clone()
    if region in ("all", "exp"):
        exp = relative.clone()
        exp[:, lips] = drv.exp[:, lips]
    elif region == "lip":
        exp[:, lips] = relative[:, lips]
    t = src.t + (drv.t - drv0.t)
    t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)
    return PoseExp(R, exp, src.scale * (drv.scale / drv0.scale), t)


def compose_driving(src: PoseExp, drv: PoseExp, drv0: Optional[PoseExp],
                    opts: DriveOptions, source_is_video: bool = False) -> PoseExp:
    """The driven (R, exp, scale, t) per frame; all inputs batched over the same T frames
    (``drv0`` is the reference driving frame, broadcast; unused in absolute mode)."""
    region = opts.region
    if opts.formula == "joyvasa":
        return _compose_joyvasa(src, drv, drv0, region)
    pose = region in ("all", "pose")
    mask = expression_mask(region)
    if opts.relative:
        if opts.driver_is_image:
            R = src.R
            moved = src.exp + (drv.exp - torch.tensor(LIP_ARRAY, dtype=src.exp.dtype))
            scale, t = src.scale, src.t
        else:
            R = (drv.R @ drv0.R.transpose(1, 2)) @ src.R if pose else src.R
            moved = src.exp + (drv.exp - drv0.exp)
            scale = src.scale * (drv.scale / drv0.scale) \
                if region == "all" and not source_is_video else src.scale
            t = src.t + (drv.t - drv0.t) if pose and not source_is_video else src.t
        if opts.smooth_variance and source_is_video:
            moved = _smooth(moved, opts.smooth_variance)
            R = _smooth(R, opts.smooth_variance) if pose else R
        whole = region in ("all", "exp") and not source_is_video
        exp = moved if whole else torch.where(mask, moved, src.exp)
    else:
        R, moved = (drv.R if pose else src.R), drv.exp
        if opts.smooth_variance and source_is_video:
            moved = _smooth(moved, opts.smooth_variance)
            R = _smooth(R, opts.smooth_variance) if pose else R
        exp = torch.where(mask, moved, src.exp)
        scale, t = src.scale, (drv.t if pose else src.t)
    t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)  # tz is never used
    return PoseExp(R, exp, scale, t)


def expression_friendly_multiplier(x_s: torch.Tensor, x_d0: torch.Tensor) -> float:
    """sqrt(vol(hull(x_s))) / sqrt(vol(hull(x_d0))) of two (21,3) keypoint sets (float64)."""
    vs = convex_hull_volume(x_s.detach().cpu().double().reshape(-1, 3).numpy())
    vd = convex_hull_volume(x_d0.detach().cpu().double().reshape(-1, 3).numpy())
    return math.sqrt(vs) / math.sqrt(vd) if vd > 0 else 1.0


def _net(nets, role: str):
    try:
        return nets[role]
    except (KeyError, TypeError):
        raise ShapeError(f"driving needs the '{role}' network, which the loaded "
                         "LivePortrait models do not have") from None


@torch.no_grad()
def driven_pose_exp(source: MotionInfo, motion: Motion, opts: DriveOptions = DriveOptions()) -> tuple:
    """A driving motion composed with the source, before keypoints: (canonical kp (T,21,3),
    the source's PoseExp, the driven PoseExp), one row per frame of ``motion`` (its
    ``source_index`` picks the source frame of each)."""
    index = motion.source_index.long()
    source_is_video = len(source) > 1
    kp, s_pe, _ = decode_info(source.select(index if source_is_video else torch.zeros_like(index)))
    drv = motion_pose_exp(motion)
    drv0 = None if not (opts.relative or opts.formula == "joyvasa") else drv.frame(0)
    if drv0 is not None:
        drv0 = PoseExp(*(v.expand_as(w) for v, w in zip(
            (drv0.R, drv0.exp, drv0.scale, drv0.t), (drv.R, drv.exp, drv.scale, drv.t))))
    return kp, s_pe, compose_driving(s_pe, drv, drv0, opts, source_is_video)


def angles_from_matrix(R: torch.Tensor) -> tuple:
    """(pitch, yaw, roll) degrees (B,) of rotation matrices (B,3,3) in :func:`rotation_matrix`'s
    convention, so that rotation_matrix(*angles_from_matrix(R)) == R (yaw within ±90°)."""
    m = R.transpose(1, 2).to(torch.float64)            # Rz·Ry·Rx
    yaw = torch.asin((-m[:, 2, 0]).clamp(-1.0, 1.0))
    pitch = torch.atan2(m[:, 2, 1], m[:, 2, 2])
    roll = torch.atan2(m[:, 1, 0], m[:, 0, 0])
    return tuple(torch.rad2deg(a).to(R.dtype) for a in (pitch, yaw, roll))


@torch.no_grad()
def drive_keypoints(source: MotionInfo, motion: Motion, opts: DriveOptions = DriveOptions(),
                    nets=None, source_lip_ratio=None) -> Keypoints:
    """Driven keypoints of every frame of ``motion`` applied to ``source``.

    source: M's output of the source frames (image: 1 frame; video: N frames, picked per
    output frame by ``motion.source_index``). motion: driving motion (frame 0 is the
    relative reference); its ``eye_ratio`` (T,3) / ``lip_ratio`` (T,2) feed retargeting.
    nets: anything indexable by "stitching" / "retarget_eye" / "retarget_lip" (a
    ModelBundle) when stitching or retargeting is on. source_lip_ratio: (N,) lip-open
    ratio of the source frames, for ``normalize_lip``.
    """
    index = motion.source_index.long()
    source_is_video = len(source) > 1
    kp, s_pe, new = driven_pose_exp(source, motion, opts)
    x_s = compose_keypoints(kp, s_pe.R, s_pe.exp, s_pe.scale, s_pe.t)
    x_d = compose_keypoints(kp, new.R, new.exp, new.scale, new.t)

    if opts.relative and opts.expression_friendly and not source_is_video \
            and not opts.driver_is_image:
        mult = expression_friendly_multiplier(x_s[0], x_d[0])
        x_d = (x_d - x_d[0:1]) * torch.tensor(mult, dtype=x_d.dtype) + x_s

    lip_delta = None
    if opts.normalize_lip and opts.relative and source_lip_ratio is not None:
        ratio = torch.as_tensor(source_lip_ratio, dtype=x_s.dtype).reshape(-1)
        ratio = ratio[index] if ratio.numel() > 1 else ratio.expand(len(index))
        combined = torch.stack([ratio, torch.zeros_like(ratio)], dim=1)
        lip_delta = retarget_lip(_net(nets, "retarget_lip"), x_s, combined)
        lip_delta = lip_delta * (ratio >= opts.lip_normalize_threshold).to(x_s.dtype)[:, None, None]
    # relative retargeting starts from the source (the official Algorithm 1)
    x_d = finish_driven(x_s, x_d, opts, nets, motion.eye_ratio, motion.lip_ratio, lip_delta,
                        from_source=opts.relative)
    return Keypoints(x_s=x_s, x_d=x_d, fps=motion.fps, source_index=index.clone(),
                     crop_edge=motion.crop_edge)


def finish_driven(x_s: torch.Tensor, x_d: torch.Tensor, opts: DriveOptions, nets=None,
                  eye_ratio=None, lip_ratio=None, lip_delta=None, from_source: bool = False):
    """The one order of the final steps for every kind of motion: eye/lip retargeting
    deltas (added to the source keypoints when ``from_source``, else to x_d), then stitching;
    without retargeting: stitching, then the lip-normalisation delta; then the multiplier."""
    if opts.eye_retargeting or opts.lip_retargeting:
        x_d = x_s if from_source else x_d
        if opts.eye_retargeting:
            if eye_ratio is None:
                raise ShapeError("eye retargeting needs MOTION.eye_ratio (T,3)")
            x_d = x_d + retarget_eye(_net(nets, "retarget_eye"), x_s, eye_ratio.float())
        if opts.lip_retargeting:
            if lip_ratio is None:
                raise ShapeError("lip retargeting needs MOTION.lip_ratio (T,2)")
            x_d = x_d + retarget_lip(_net(nets, "retarget_lip"), x_s, lip_ratio.float())
        if opts.stitching:
            x_d = stitch(_net(nets, "stitching"), x_s, x_d)
    else:
        if opts.stitching:
            x_d = stitch(_net(nets, "stitching"), x_s, x_d)
        if lip_delta is not None:
            x_d = x_d + lip_delta
    return apply_driving_multiplier(x_s, x_d, opts.driving_multiplier)


def apply_driving_multiplier(x_s: torch.Tensor, x_d: torch.Tensor, m: float) -> torch.Tensor:
    """x_s + (x_d - x_s) * m in the keypoints' dtype (the official last step, even for 1.0)."""
    return x_s + (x_d - x_s) * m
