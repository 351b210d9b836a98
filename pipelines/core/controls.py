"""Keyframed motion controls, for any MOTION.

Keyframes are JSON: ``{"0": {"delta_yaw": 10}, "50": {"delta_yaw": -10}}`` or
``[{"frame": 0, "delta_yaw": 10}, ...]``. With ``interpolate`` numeric controls ramp
linearly between keyframes (and hold before the first / after the last); without it a
control applies on its keyframe only (the original Ditto ``ctrl_info`` semantics).

A motion whose producer offers a restitch hook (Ditto) is derived again by it with the
controls (exact Ditto semantics, blinks and fades included); other motion gets the
pose/expression controls applied in degrees directly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .errors import TalkingHeadError
from .motion import Motion

POSE = ("pitch", "yaw", "roll")
GENERIC_KEYS = {f"delta_{a}" for a in POSE} | {f"alpha_{a}" for a in POSE} | {"delta_exp"}


def parse_keyframes(text) -> dict:
    """JSON text (or an already parsed dict/list) -> {frame: {control: value}}."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise TalkingHeadError(f"keyframes are not valid JSON ({exc.msg} at line {exc.lineno}, "
                               f"column {exc.colno}). Example: {{\"0\": {{\"delta_yaw\": 10}}}}") from None
    out: dict = {}
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        try:
            items = [(e["frame"], {k: v for k, v in e.items() if k != "frame"}) for e in data]
        except (TypeError, KeyError):
            raise TalkingHeadError("keyframe lists hold objects with a 'frame' key, e.g. "
                                   "[{\"frame\": 0, \"delta_yaw\": 10}]") from None
    else:
        raise TalkingHeadError("keyframes must be a JSON object or list")
    for frame, ctrl in items:
        try:
            f = int(frame)
        except (TypeError, ValueError):
            raise TalkingHeadError(f"keyframe '{frame}' is not a frame number") from None
        if not isinstance(ctrl, dict):
            raise TalkingHeadError(f"keyframe {f} must map control names to values")
        out.setdefault(f, {}).update(ctrl)
    return out


def expand(keyframes: dict, n_frames: int, interpolate: bool) -> dict:
    """Per-frame controls for frames 0..n-1; numeric controls interpolated when asked."""
    if not interpolate or not keyframes:
        return {f: c for f, c in keyframes.items() if 0 <= f < n_frames}
    keys = sorted({k for c in keyframes.values() for k in c})
    out: dict = {}
    frames = np.arange(n_frames)
    for key in keys:
        pts = sorted((f, c[key]) for f, c in keyframes.items() if key in c)
        values = [v for _, v in pts]
        if all(isinstance(v, (int, float)) for v in values):
            series = np.interp(frames, [f for f, _ in pts], values)
            for f in frames:
                out.setdefault(int(f), {})[key] = float(series[f])
        elif all(isinstance(v, list) for v in values):
            arr = np.asarray(values, np.float32)
            series = np.stack([np.interp(frames, [f for f, _ in pts], arr[:, j]) for j in range(arr.shape[1])], 1)
            for f in frames:
                out.setdefault(int(f), {})[key] = series[f].tolist()
        else:
            for f, v in pts:
                if 0 <= f < n_frames:
                    out.setdefault(f, {})[key] = v
    return out


def apply_generic(motion: Motion, overall: dict, per_frame: dict) -> Motion:
    """Pose deltas (degrees), pose factors and expression deltas on a copy of ``motion``."""
    bad = (set(overall) | {k for c in per_frame.values() for k in c}) - GENERIC_KEYS
    if bad:
        raise TalkingHeadError(f"control(s) {sorted(bad)} need Ditto motion; for other motion use "
                               f"{', '.join(sorted(GENERIC_KEYS))}")
    n = len(motion)

    def series(key: str, neutral: float) -> torch.Tensor:
        """Per-frame value of a scalar control: keyframe, else overall, else neutral."""
        base = float(overall.get(key, neutral))
        return torch.tensor([float(per_frame.get(i, {}).get(key, base)) for i in range(n)])

    pose = {a: getattr(motion, a) * series(f"alpha_{a}", 1.0) + series(f"delta_{a}", 0.0) for a in POSE}
    exp = motion.exp.clone()
    for i in range(n):
        delta = per_frame.get(i, {}).get("delta_exp", overall.get("delta_exp"))
        if delta is not None:
            exp[i] += torch.as_tensor(delta, dtype=exp.dtype).reshape(21, 3)
    return motion.replace(exp=exp, **pose)


@dataclass(frozen=True)
class MotionEdit:
    """Controls for a MOTION: ``overall`` {control: value} for every frame, ``keyframes``
    {frame: {control: value}} (already expanded to frames), and for producers that have
    them, fades (frames) and blinks (None = unchanged)."""

    overall: dict = field(default_factory=dict)
    keyframes: dict = field(default_factory=dict)
    fade_in: int = 0
    fade_out: int = 0
    blinks: Optional[bool] = None


def apply(motion: Motion, edit: MotionEdit) -> Motion:
    """``motion`` with the controls of ``edit`` (see the module docstring)."""
    if motion.restitch is not None:
        return motion.restitch.with_controls(edit)
    if edit.fade_in or edit.fade_out or edit.blinks:
        raise TalkingHeadError(f"fades and blinks need a motion whose producer can re-derive it "
                               f"(Ditto); this motion comes from {motion.origin!r}")
    return apply_generic(motion, edit.overall, edit.keyframes)


def edit_from(overall: dict, keyframes, interpolate: bool, n_frames: int, fade_in: int = 0,
              fade_out: int = 0, blinks: Optional[bool] = None) -> MotionEdit:
    """A MotionEdit from a node's or command's inputs (keyframes as JSON text or parsed)."""
    frames = expand(parse_keyframes(keyframes), n_frames, interpolate)
    return MotionEdit(dict(overall), frames, int(fade_in), int(fade_out), blinks)
