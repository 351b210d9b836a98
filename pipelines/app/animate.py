"""From MOTION to KEYPOINTS for any motion producer (video driving, Ditto, keyframes).

Two kinds of MOTION reach the Stitch stage:
* ``meta["kind"] == "driving"``: a driving video's own motion; it is composed with the
  source by LivePortrait's driving formula (relative or absolute, §1.8 of the spec);
* ``meta["kind"] == "absolute"``: motion already expressed for the source (Ditto's motion
  stitch output); the driven keypoints are the source's canonical keypoints posed by it.
Both then get stitching, optional eye/lip retargeting and the driving multiplier.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch

from ..core.errors import ShapeError, TalkingHeadError
from ..liveportrait import keypoints as kpm
from ..liveportrait.stitching import retarget_eye, retarget_lip, stitch
from ..core.timeline import frame_order
from ..core.types import Keypoints, ModelBundle, Motion, MotionInfo, Source

LENGTH_MODES = ("hold last source frame", "cycle", "ping-pong", "cut")

# MediaPipe 478 points used for open ratios (upper lid, lower lid, corner, corner)
_MP_EYES = ((159, 145, 33, 133), (386, 374, 362, 263))
_MP_LIP = (13, 14, 61, 291)
# LivePortrait's 203-point definition (spec §1.7)
_LP203_EYES = ((6, 18, 0, 12), (30, 42, 24, 36))
_LP203_LIP = (90, 102, 48, 66)


def open_ratios(landmarks: torch.Tensor, scheme: str) -> tuple:
    """(N,K,2) landmarks -> eye-open ratios (N,2) and lip-open ratio (N,1): lid (or lip)
    gap over eye (or mouth) width, the quantity LivePortrait's retargeting MLPs read."""
    if scheme.startswith("mediapipe"):
        eyes, lip = _MP_EYES, _MP_LIP
    elif scheme in ("lp203", "liveportrait203", "203"):
        eyes, lip = _LP203_EYES, _LP203_LIP
    else:
        raise TalkingHeadError(f"eye/lip retargeting needs MediaPipe or 203-point landmarks, "
                               f"not '{scheme}'")
    l = torch.as_tensor(landmarks, dtype=torch.float32)

    def ratio(a, b, c, d):
        return (l[:, a] - l[:, b]).norm(dim=-1) / ((l[:, c] - l[:, d]).norm(dim=-1) + 1e-6)

    eye = torch.stack([ratio(*eyes[0]), ratio(*eyes[1])], dim=1)
    return torch.nan_to_num(eye, 0.3), torch.nan_to_num(ratio(*lip), 0.0).unsqueeze(1)


def frame_mapping(n_source: int, n_driving: int, mode: str) -> tuple:
    """(number of output frames, source_index (T,)) for a length mismatch."""
    if mode not in LENGTH_MODES:
        raise TalkingHeadError(f"length mode must be one of {LENGTH_MODES}, got {mode!r}")
    n_out = min(n_source, n_driving) if mode == "cut" and n_source > 1 else n_driving
    order = {"hold last source frame": "hold", "ping-pong": "ping-pong"}.get(mode, "cycle")
    return n_out, torch.from_numpy(frame_order(n_source, n_out, order))


def driving_motion(frames, fps: float, n_source: int, detector, renderer: ModelBundle,
                   length: str = "cycle", relative: bool = True, expression_friendly: bool = True,
                   multiplier: float = 1.0, smoothing: int = 3,
                   progress: Optional[Callable[[int, int], None]] = None,
                   check_interrupt: Optional[Callable[[], None]] = None) -> tuple:
    """A driving video's own motion for a source of ``n_source`` frames -> (Motion, the
    driving frames' registration). Its frames are registered (a frame without a face
    reuses its neighbours', and a driver with none falls back to the whole frame), read by
    the motion extractor, and mapped onto the source frames by ``length``."""
    from . import sources as source_ops
    from ..face import crop_inputs_256
    from ..liveportrait import render

    n_out, index = frame_mapping(n_source, int(frames.shape[0]), length)
    steps = 2 * n_out
    drv = source_ops.register_source(
        frames[:n_out], fps, detector, None, smooth_window=smoothing, whole_image_fallback=True,
        progress=(lambda d, t: progress(d, steps)) if progress else None, check_interrupt=check_interrupt)
    info = render.extract_motion(renderer, crop_inputs_256(drv.crops.numpy()),
                                 progress=(lambda d: progress(n_out + d, steps)) if progress else None,
                                 check_interrupt=check_interrupt)
    eye, lip = open_ratios(drv.landmarks, drv.landmark_scheme)
    motion = kpm.motion_from_info(info, fps, index)
    motion.meta.update(kind="driving", relative=relative, expression_friendly=expression_friendly,
                       multiplier=float(multiplier), driver_is_image=int(frames.shape[0]) == 1,
                       driving_eye_open=eye[:, :1], driving_lip_open=lip)
    return motion, drv


@torch.no_grad()
def motion_keypoints(motion: Motion, info: MotionInfo, stitch_net=None) -> Keypoints:
    """Keypoints of motion already expressed for the source (Ditto's): the canonical
    keypoints of each output frame's source frame (``motion.source_index``; a one-frame
    source serves every frame), posed by the motion; stitched when ``stitch_net`` is given."""
    index = motion.source_index.long()
    kp, pe, _ = kpm.decode_info(info.select(index if len(info) > 1 else torch.zeros_like(index)))
    x_s = kpm.compose_keypoints(kp, pe.R, pe.exp, pe.scale, pe.t)
    R = kpm.rotation_matrix(motion.pitch, motion.yaw, motion.roll)
    x_d = kpm.compose_keypoints(kp, R, motion.exp, motion.scale, motion.t)
    if stitch_net is not None:
        x_d = stitch(stitch_net, x_s, x_d)
    return Keypoints(x_s=x_s, x_d=x_d, fps=motion.fps, source_index=index.clone(),
                     meta=dict(motion.meta.get("keypoints_meta", {})))


def keypoints_for(source: Source, motion: Motion, nets: ModelBundle, stitching: bool = True,
                  relative: Optional[bool] = None, expression_friendly: Optional[bool] = None,
                  region: str = "all", driving_multiplier: float = 1.0,
                  eye_open: Optional[float] = None, lip_open: Optional[float] = None) -> Keypoints:
    """KEYPOINTS for ``motion`` on ``source``.

    relative/expression_friendly: None = what the motion's producer asked for (its meta).
    eye_open/lip_open: target open ratios for eye/lip retargeting (None = off).
    """
    kind = motion.meta.get("kind", "driving")
    index = motion.source_index.long()
    if index.numel() and int(index.max()) >= len(source):
        raise ShapeError(f"the MOTION refers to source frame {int(index.max())} but the SOURCE has "
                         f"{len(source)} frames; connect the SOURCE the motion was made for")
    t = len(motion)
    if eye_open is not None or lip_open is not None:
        eye_s, lip_s = open_ratios(source.landmarks, source.landmark_scheme)
        pick = index if len(source) > 1 else torch.zeros_like(index)
        # a copy: node inputs are cached by the host and must never be changed in place
        motion = dataclasses.replace(
            motion,
            eye_ratio=None if eye_open is None else torch.cat(
                [eye_s[pick], torch.full((t, 1), float(eye_open))], dim=1),
            lip_ratio=None if lip_open is None else torch.cat(
                [lip_s[pick], torch.full((t, 1), float(lip_open))], dim=1))
    if kind == "driving":
        opts = kpm.DriveOptions(
            relative=motion.meta.get("relative", True) if relative is None else relative,
            region=region,
            expression_friendly=(motion.meta.get("expression_friendly", True)
                                 if expression_friendly is None else expression_friendly),
            stitching=stitching, eye_retargeting=eye_open is not None,
            lip_retargeting=lip_open is not None,
            driving_multiplier=driving_multiplier * motion.meta.get("multiplier", 1.0),
            driver_is_image=motion.meta.get("driver_is_image", False))
        kps = kpm.drive_keypoints(source.motion, motion, opts, nets)
        kps.meta.update(motion.meta.get("keypoints_meta", {}))
        return kps
    if source.motion is None:
        raise TalkingHeadError("The SOURCE has no motion-extractor data: connect the renderer "
                               "models to Face Register.")
    kps = motion_keypoints(motion, source.motion)
    x_s, x_d = kps.x_s, kps.x_d
    with torch.no_grad():
        if eye_open is not None:
            x_d = x_d + retarget_eye(nets["retarget_eye"], x_s, motion.eye_ratio)
        if lip_open is not None:
            x_d = x_d + retarget_lip(nets["retarget_lip"], x_s, motion.lip_ratio)
        if stitching:
            x_d = stitch(nets["stitching"], x_s, x_d)
        kps.x_d = kpm.apply_driving_multiplier(x_s, x_d, driving_multiplier)
    return kps
