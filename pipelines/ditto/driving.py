"""Raw LMDM motion + a registered portrait -> ``Motion`` (degrees) -> ``Keypoints``.

:func:`stitch_motion` runs :class:`~.motion_stitch.MotionStitcher` over every output
frame with the source frame that serves it, so it covers images, video templates
(ping-pong), ``template_n_frames`` and "preserve original motion":

* image: the generated head pose, translation and lip/eye expression drive the still;
* video (``use_d_keys=("exp",)``, no eye drive): each output frame keeps *its* source
  frame's pose, translation, scale and expression, and only the lip keypoints'
  expression becomes ``exp_src + (exp_gen - exp_gen[d0])`` (the audio-driven delta);
* ``preserve_motion``: the same, but over *all* source frames (the template's first N
  frames only condition the LMDM), so the video's own head motion and blinks stay.
  The source's mouth should be closed: the delta is added to whatever the lips do.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..core.motion import Motion
from ..core.types import MotionInfo
from .config import DittoConfig
from .frames import mirror_indices, template_frames
from .motion_layout import motion_info_frame, row_to_info
from .motion_stitch import (
    POSE_KEYS, MotionStitcher, StitchSettings, blink_schedule, check_controls, degrees,
    fade_controls, merge_controls)


@dataclass
class DittoMotion:
    """The LMDM's motion: (T,265) rows (clipped; layout in motion_layout) at ``fps``, and
    the relative-motion anchor ``d0`` (online mode: the warm-up frame; offline: None,
    i.e. the first frame)."""

    rows: torch.Tensor
    fps: float = 25.0
    d0: Optional[torch.Tensor] = None
    online: bool = False

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def _np(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)


@dataclass(frozen=True)
class DittoControls:
    """Everything Ditto's motion stitch applies on top of the LMDM's motion; None = the
    released cfg's value.

    is_image: treat the source as a still (default: one source frame). template_n_frames:
    a video source uses only its first N frames (ping-pong). preserve_motion: render over
    every source frame, keeping the video's own head motion and blinks (lips driven).
    use_d_keys (keys or {key: weight}), relative, drive_eye: the stitch's setup.
    blinks: the cfg's blink template, seeded by ``seed`` (``blink_gap`` frames between, or
    ``blink_idx`` (T,) to inject a schedule). fade_in / fade_out (frames), fade_type ("s"
    source, "d0" first frame), fade_keys. overall: controls for every frame; keyframes:
    {frame: {control: value}} overriding them (see motion_stitch.CTRL_KEYS).
    use_reference_identity: the cfg's reference face sets the scale ratio.
    reference_quirks: reproduce the original's control bugs (the goldens).
    """

    is_image: Optional[bool] = None
    template_n_frames: Optional[int] = None
    preserve_motion: bool = False
    use_d_keys: object = None
    relative: Optional[bool] = None
    drive_eye: Optional[bool] = None
    blinks: bool = True
    blink_gap: object = None
    blink_idx: object = None
    fade_in: int = 0
    fade_out: int = 0
    fade_type: Optional[str] = None
    fade_keys: object = None
    overall: Optional[dict] = None
    keyframes: Optional[dict] = None
    use_reference_identity: bool = True
    reference_quirks: bool = False
    seed: int = 0

    def replace(self, **changes) -> "DittoControls":
        return dataclasses.replace(self, **changes)


class MotionDriver:
    """Stateful :func:`stitch_motion` for streams: ``push(rows, d0)`` -> Motion of the new
    frames. ``n_frames`` (None when unknown, e.g. live) sizes the blink schedule and the
    fade-out."""

    def __init__(self, source: MotionInfo, cfg: Optional[DittoConfig] = None,
                 controls: DittoControls = DittoControls(), n_frames: Optional[int] = None,
                 fps: float = 25.0):
        cfg = cfg or DittoConfig()
        c = controls
        self.source, self.fps, self.frame0 = source, float(fps), 0
        n_src = len(source)
        tn = cfg.template_n_frames if c.template_n_frames is None else c.template_n_frames
        self.n_render = n_src if c.preserve_motion else template_frames(n_src, tn)
        self._infos = {}
        delta_eye = cfg.delta_eye_arr if c.blinks else None
        gap = cfg.delta_eye_open_n if c.blink_gap is None else c.blink_gap
        blink_idx = c.blink_idx
        if blink_idx is None and delta_eye is not None:
            # unknown length: a long schedule, cycled (the reference uses 3000 frames)
            blink_idx = blink_schedule(n_frames or 3000, len(delta_eye), gap, c.seed)
        ch_scale = None
        if c.use_reference_identity and cfg.ch_info is not None:
            ch_scale = np.asarray(cfg.ch_info["x_s_info_lst"][0]["scale"]).reshape(-1)[0]
        settings = StitchSettings(
            is_image=(n_src == 1) if c.is_image is None else bool(c.is_image),
            use_d_keys=cfg.use_d_keys if c.use_d_keys is None else c.use_d_keys,
            relative_d=cfg.relative_d if c.relative is None else bool(c.relative),
            drive_eye=cfg.drive_eye if c.drive_eye is None else c.drive_eye,
            delta_eye_arr=delta_eye, blink_idx=blink_idx,
            fade_type=cfg.fade_type if c.fade_type is None else c.fade_type,
            fade_out_keys=tuple(cfg.fade_out_keys if c.fade_keys is None else c.fade_keys),
            overall_ctrl_info=dict(cfg.overall_ctrl_info if c.overall is None else c.overall),
            ch_scale=ch_scale, reference_quirks=c.reference_quirks)
        check_controls(settings.overall_ctrl_info, " in the overall controls")
        # a fade-out needs the length; live streams can only fade in
        fades = fade_controls(n_frames or 0, c.fade_in, c.fade_out if n_frames else 0)
        self.ctrl = merge_controls(fades, c.keyframes)
        for f, ctrl in self.ctrl.items():
            check_controls(ctrl, f" at frame {f}")
        self.settings = settings
        self.stitcher: Optional[MotionStitcher] = None

    def _src(self, i: int) -> dict:
        if i not in self._infos:
            self._infos[i] = motion_info_frame(self.source, int(i))
        return self._infos[i]

    def push(self, rows, d0=None) -> Motion:
        rows = _np(rows).reshape(-1, 265)
        if self.stitcher is None:
            anchor = row_to_info(_np(d0)) if d0 is not None else None
            self.stitcher = MotionStitcher(self.settings, self._src(0), d0=anchor)
        index = mirror_indices(np.arange(self.frame0, self.frame0 + len(rows)), self.n_render)
        finals = [self.stitcher.frame(self._src(index[j]), row_to_info(rows[j]),
                                      self.ctrl.get(self.frame0 + j))
                  for j in range(len(rows))]
        self.frame0 += len(rows)
        return infos_to_motion(finals, index, self.fps)


@dataclass(frozen=True)
class DittoRestitch:
    """Ditto's hook of the MOTION contract: the raw LMDM motion, the source it was made for
    and the controls used, so new controls re-run only the (cheap) motion stitch."""

    raw: DittoMotion
    source: MotionInfo
    cfg: DittoConfig
    controls: DittoControls

    def with_controls(self, edit) -> Motion:
        """``edit``: a core.controls.MotionEdit (overall, keyframes, fades, blinks)."""
        c = self.controls
        changes = dict(overall={**(c.overall or {}), **edit.overall},
                       keyframes={**(c.keyframes or {}), **edit.keyframes})
        if edit.fade_in:
            changes["fade_in"] = edit.fade_in
        if edit.fade_out:
            changes["fade_out"] = edit.fade_out
        if edit.blinks is not None:
            changes["blinks"] = edit.blinks
        return stitch_motion(self.raw, self.source, self.cfg, c.replace(**changes))


def stitch_motion(raw, source: MotionInfo, cfg: Optional[DittoConfig] = None,
                  controls: DittoControls = DittoControls()) -> Motion:
    """Apply the portrait and every control to raw motion: an absolute ``Motion`` (degrees)
    that carries its :class:`DittoRestitch`.

    raw: :class:`DittoMotion` or (T,265) rows at 25 fps. source: the portrait's MotionInfo
    (N frames). Controls: delta_/alpha_ pitch/yaw/roll (degrees / factor), delta_exp (63),
    vad_alpha, fade_alpha, fade_out_keys (see :class:`DittoControls`).
    """
    if not isinstance(raw, DittoMotion):
        raw = DittoMotion(torch.as_tensor(raw).reshape(-1, 265))
    motion = MotionDriver(source, cfg, controls, n_frames=len(raw), fps=raw.fps).push(raw.rows, raw.d0)
    return motion.replace(restitch=DittoRestitch(raw, source, cfg or DittoConfig(), controls))


def infos_to_motion(infos, source_index, fps: float) -> Motion:
    """Final per-frame info dicts -> Ditto's absolute Motion (pose converted to degrees)."""
    def stack(fn):
        return torch.from_numpy(np.stack([np.asarray(fn(i), np.float32).reshape(-1) for i in infos]))
    pose = {k: stack(lambda i, k=k: degrees(i[k])) for k in POSE_KEYS}
    return Motion(scale=stack(lambda i: i["scale"]), t=stack(lambda i: i["t"]),
                  exp=stack(lambda i: i["exp"]), fps=float(fps),
                  source_index=torch.as_tensor(np.asarray(source_index), dtype=torch.long),
                  kind="absolute", origin="ditto", crop_edge="ditto", **pose)
