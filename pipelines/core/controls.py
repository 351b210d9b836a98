"""Keyframed motion controls, for any MOTION.

Keyframes are JSON: ``{"0": {"delta_yaw": 10}, "50": {"delta_yaw": -10}}`` or
``[{"frame": 0, "delta_yaw": 10}, ...]``. With ``interpolate`` numeric controls ramp
linearly between keyframes (and hold before the first / after the last); without it a
control applies on its keyframe only (the original Ditto ``ctrl_info`` semantics).

Ditto motion is re-stitched with the controls (exact Ditto semantics, blinks and fades
included); other motion gets the pose/expression controls applied in degrees directly.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Optional

import numpy as np
import torch

from .errors import TalkingHeadError
from .types import Motion

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
    return dataclasses.replace(motion, exp=exp, meta=dict(motion.meta), **pose)


def apply(motion: Motion, overall: dict, keyframes: dict, interpolate: bool = True,
          fade_in: int = 0, fade_out: int = 0, blinks: Optional[bool] = None) -> Motion:
    """``motion`` with controls; Ditto motion is re-stitched from its raw rows."""
    per_frame = expand(keyframes, len(motion), interpolate)
    ditto = motion.meta.get("ditto")
    if ditto is None:
        if fade_in or fade_out or blinks:
            raise TalkingHeadError("fades and blinks need Ditto motion (they use its source and "
                                   "blink template); connect a Ditto Motion output")
        return apply_generic(motion, overall, per_frame)
    from ..ditto import stitch_motion

    kwargs = dict(ditto["kwargs"])
    kwargs["overall"] = {**kwargs.get("overall", {}), **overall}
    kwargs["keyframes"] = {**(kwargs.get("keyframes") or {}), **per_frame}
    if fade_in:
        kwargs["fade_in"] = fade_in
    if fade_out:
        kwargs["fade_out"] = fade_out
    if blinks is not None:
        kwargs["blinks"] = blinks
    out = stitch_motion(ditto["raw"], ditto["source_motion"], ditto["cfg"], **kwargs)
    out.meta.update({k: v for k, v in motion.meta.items() if k not in out.meta or k == "ditto"})
    out.meta["ditto"] = dict(ditto, kwargs=kwargs)
    return out
