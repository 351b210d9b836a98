"""Generated motion -> per-frame driving motion relative to the portrait, with controls
(spec ditto.md §3.7, §5.2; goldens ``motion_stitch.*``).

Per frame, in the reference's order:
 1. controls: ``overall`` defaults, overridden by the frame's keyframe dict;
 2. relative motion: ``x_d = x_s + (x_d - d0) * w`` for the driven keys (pose on the raw
    66-bin logits, as the reference does), everything else from the source frame;
 3. expression mask: lips (and, without a blink template, eyes) driven, the rest from the
    source, plus the blink template on the eyes;
 4. ``vad_alpha``; 5. ``delta_*`` / ``alpha_*`` / ``delta_exp``; 6. fade; 7. gaze fix.

``reference_quirks=False`` (default) fixes three bugs of the original; ``True``
reproduces them (the goldens use it):
 * ``alpha_pitch/yaw/roll`` without a ``delta_*`` on that axis multiplied the 66 bin
   logits (changing softmax sharpness, not the angle). Fixed: it scales the angle.
   Absolute mode's dict weights get the same fix for pose keys.
 * ``fade_type=""`` (the code default) silently disabled ``fade_alpha``. Fixed: ""/None
   fades toward the source motion ("s"), so fade in/out works without extra flags.
 * fading a pose key that a delta had turned into degrees mixed degrees with the fade
   target's logits. Fixed: pose keys are mixed in degrees.
 * (and ``vad_alpha`` pulled every exp dim toward the source; fixed: only driven dims.)
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from ..core.errors import TalkingHeadError
from ..liveportrait.keypoints import EYE_KP, LIP_KP, bins_to_degrees

POSE_KEYS = ("pitch", "yaw", "roll")
IMAGE_KEYS = ("exp", "pitch", "yaw", "roll", "t")
VIDEO_KEYS = ("exp",)
CTRL_KEYS = {"delta_pitch", "delta_yaw", "delta_roll", "alpha_pitch", "alpha_yaw",
             "alpha_roll", "delta_exp", "vad_alpha", "fade_alpha", "fade_out_keys"}
GAZE_X, GAZE_Y = 0.26, 0.28                  # degrees of head turn -> eye exp offsets


def degrees(v) -> np.ndarray:
    """66-bin logits (1,66) -> (1,) degrees; a degree array passes through."""
    v = np.asarray(v, dtype=np.float32)
    if v.ndim > 1 and v.shape[-1] == 66:
        return bins_to_degrees(torch.from_numpy(v)).numpy().reshape(v.shape[:-1])
    return v


def _kp_dims(kps: Sequence[int]) -> np.ndarray:
    return np.array([3 * k + c for k in kps for c in range(3)], dtype=np.int64)


LIP_DIMS, EYE_DIMS = _kp_dims(LIP_KP), _kp_dims(EYE_KP)


def blink_schedule(n_frames: int, blink_len: int = 15, open_n=0, seed: int = 0,
                   gap_range: tuple = (60, 100)) -> np.ndarray:
    """(n,) template row per frame: 0 = eyes open, 0..blink_len-1 during a blink.

    ``open_n``: frames of open eyes between blinks: >0 fixed, 0 random in ``gap_range``
    (seeded; the reference used unseeded ``random``), -1 no blinks, a list is cycled.
    Every blink finishes inside the clip, so it ends with open eyes.
    """
    idx = np.zeros(max(int(n_frames), 0), dtype=np.int64)
    gen = torch.Generator().manual_seed(int(seed))
    gaps = list(open_n) if isinstance(open_n, (list, tuple)) else [int(open_n)]
    if not gaps or gaps[0] < 0:
        return idx
    k = 0

    def next_gap():
        nonlocal k
        g = gaps[k % len(gaps)]
        k += 1
        if g > 0:
            return int(g)
        lo, hi = gap_range
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    pos = next_gap()
    while pos + blink_len <= len(idx):
        idx[pos:pos + blink_len] = np.arange(blink_len)
        pos += blink_len + next_gap()
    return idx


def fade_controls(n_frames: int, fade_in: int = 0, fade_out: int = 0) -> dict:
    """{frame: {"fade_alpha": a}}: 0 -> 1 over the first ``fade_in`` frames and 1 -> 0 over
    the last ``fade_out + 1`` (the reference's ``setup_Nd`` ramps)."""
    out = {}
    for i in range(max(int(fade_in), 0)):
        out[i] = {"fade_alpha": i / fade_in}
    if fade_out and fade_out > 0:
        ss, ee = n_frames - fade_out - 1, n_frames - 1
        for i in range(max(ss, 0), n_frames):
            out[i] = {"fade_alpha": max((ee - i) / (ee - ss), 0.0)}
    return out


def merge_controls(*layers) -> dict:
    """Per-frame control dicts merged left to right (later layers win per key)."""
    out: dict = {}
    for layer in layers:
        items = enumerate(layer) if isinstance(layer, (list, tuple)) else (layer or {}).items()
        for f, ctrl in items:
            if ctrl:
                out.setdefault(int(f), {}).update(ctrl)
    return out


def check_controls(ctrl: dict, where: str = "") -> None:
    bad = set(ctrl) - CTRL_KEYS
    if bad:
        raise TalkingHeadError(f"unknown motion control(s) {sorted(bad)}{where}; "
                         f"known: {', '.join(sorted(CTRL_KEYS))}")


@dataclass
class StitchSettings:
    """MotionStitch setup (spec §3.7.1); ``None`` means the reference's resolution."""

    is_image: bool = True
    use_d_keys: object = None           # tuple of keys, or {key: weight}
    relative_d: bool = True
    drive_eye: Optional[bool] = None
    delta_eye_arr: Optional[np.ndarray] = None
    blink_idx: Optional[np.ndarray] = None      # per-frame template row (blink_schedule)
    fade_type: Optional[str] = ""
    fade_out_keys: tuple = ("exp",)
    overall_ctrl_info: dict = field(default_factory=dict)
    ch_scale: Optional[float] = None    # reference identity's scale (cfg ch_info)
    reference_quirks: bool = False


class MotionStitcher:
    """Stateful per-frame stitcher: ``frame(x_s_info, x_d_info, ctrl)`` -> final info.

    Info dicts hold (1,dim) float32 arrays; pose keys of the result are either (1,66)
    logits or (1,) degrees (after a delta), as in the reference.
    """

    def __init__(self, settings: StitchSettings, x_s_info0: dict, d0: Optional[dict] = None):
        s = self.s = settings
        keys = s.use_d_keys if s.use_d_keys is not None else (IMAGE_KEYS if s.is_image else VIDEO_KEYS)
        self.drive_eye = s.is_image if s.drive_eye is None else bool(s.drive_eye)
        self.scale_ratio = 1.0
        if s.ch_scale is not None:
            self.scale_ratio = float(np.asarray(s.ch_scale).reshape(-1)[0]) / \
                float(np.asarray(x_s_info0["scale"]).reshape(-1)[0])
            base = keys if isinstance(keys, dict) else {k: 1 for k in keys}
            keys = {k: (w * self.scale_ratio if k in ("exp",) + POSE_KEYS else w)
                    for k, w in base.items()}
        self.use_d_keys = dict(keys) if isinstance(keys, dict) else tuple(keys)
        blink = self.drive_eye and s.delta_eye_arr is not None
        a1 = np.zeros((1, 63), np.float32)
        a1[:, LIP_DIMS] = 1
        if self.drive_eye and s.delta_eye_arr is None:
            a1[:, EYE_DIMS] = 1
        a2 = np.zeros((1, 63), np.float32)
        if blink:
            a2[:, EYE_DIMS] = 1
        self.A1, self.A2, self.A3 = a1 * (1 - a2), (1 - a1) + a1 * a2, a2
        self.driven_exp = self.A1 > 0
        self.delta_eye = np.asarray(s.delta_eye_arr, np.float32) if blink else None
        self.blink_idx = np.asarray(s.blink_idx if s.blink_idx is not None else [0], np.int64)
        self.fade_type = s.fade_type or ("" if s.reference_quirks else "s")
        self.d0 = copy.deepcopy(d0)
        self.fade_dst = None
        self.idx = 0

    def _weight(self, k):
        return self.use_d_keys.get(k, 1) if isinstance(self.use_d_keys, dict) else 1

    def _mix(self, x_s: dict, x_d: dict) -> dict:
        if self.d0 is not None:
            x_d = {k: x_s[k] + (v - self.d0[k]) * self._weight(k) for k, v in x_d.items()}
        else:
            x_d = dict(x_d)
        for k, v in x_s.items():
            if k not in x_d or k not in self.use_d_keys:
                x_d[k] = v
        if isinstance(self.use_d_keys, dict) and self.d0 is None:   # absolute mode
            for k, w in self.use_d_keys.items():
                if k in POSE_KEYS and not self.s.reference_quirks:
                    x_d[k] = degrees(x_d[k]) * w       # scale the angle, not the logits
                else:
                    x_d[k] = x_d[k] * w
        return x_d

    def _fade(self, x_d: dict, dst: dict, alpha: float, keys) -> dict:
        for k in keys:
            if k == "kp":
                continue
            if k in POSE_KEYS and not self.s.reference_quirks:
                x_d[k] = degrees(x_d[k]) * alpha + degrees(dst[k]) * (1 - alpha)
            else:
                x_d[k] = x_d[k] * alpha + dst[k] * (1 - alpha)
        return x_d

    def frame(self, x_s_info: dict, x_d_info: dict, ctrl: Optional[dict] = None) -> dict:
        ctrl = {**self.s.overall_ctrl_info, **(ctrl or {})}
        quirks = self.s.reference_quirks
        if self.s.relative_d and self.d0 is None:
            self.d0 = copy.deepcopy(x_d_info)
        x_d = self._mix(x_s_info, x_d_info)

        delta_eye = 0
        if self.delta_eye is not None:
            delta_eye = self.delta_eye[self.blink_idx[self.idx % len(self.blink_idx)]][None]
        x_d["exp"] = x_d["exp"] * self.A1 + x_s_info["exp"] * self.A2 + delta_eye * self.A3

        vad = ctrl.get("vad_alpha", 1)
        if vad < 1:
            pulled = x_d["exp"] * vad + x_s_info["exp"] * (1 - vad)
            x_d["exp"] = pulled if quirks else np.where(self.driven_exp, pulled, x_d["exp"])

        for k in POSE_KEYS:
            if "delta_" + k in ctrl:
                x_d[k] = degrees(x_d[k]) + ctrl["delta_" + k]
        for k in POSE_KEYS:
            if "alpha_" + k in ctrl:
                x_d[k] = (x_d[k] if quirks else degrees(x_d[k])) * ctrl["alpha_" + k]
        if "delta_exp" in ctrl:
            x_d["exp"] = x_d["exp"] + np.asarray(ctrl["delta_exp"], np.float32).reshape(1, 63)

        if self.fade_type == "d0" and self.fade_dst is None:
            self.fade_dst = copy.deepcopy(x_d)
        if "fade_alpha" in ctrl and self.fade_type in ("d0", "s"):
            dst = self.fade_dst if self.fade_type == "d0" else x_s_info
            keys = ctrl.get("fade_out_keys", self.s.fade_out_keys)
            x_d = self._fade(x_d, dst, ctrl["fade_alpha"], keys)

        if self.drive_eye:
            x_d["exp"] = gaze_fix(x_d["exp"], x_s_info, x_d)
        self.idx += 1
        return x_d


def gaze_fix(exp: np.ndarray, x_s_info: dict, x_d_info: dict) -> np.ndarray:
    """Shift the eye keypoints against the head turn so the gaze stays on the camera."""
    dyaw = float(degrees(x_d_info["yaw"]).reshape(-1)[0]) - float(degrees(x_s_info["yaw"]).reshape(-1)[0])
    dpitch = float(degrees(x_d_info["pitch"]).reshape(-1)[0]) - float(degrees(x_s_info["pitch"]).reshape(-1)[0])
    dx, dy = dyaw * GAZE_X, dpitch * GAZE_Y
    exp = exp.copy()
    # exp index 3k+c: 33/34 = keypoint 11 x/y, 45/46 = keypoint 15 x/y (the two eyes)
    if dx > 0:
        exp[0, 33] += 0.0007 * dx
        exp[0, 45] += 0.001 * dx
    else:
        exp[0, 33] += 0.001 * dx
        exp[0, 45] += 0.0007 * dx
    exp[0, 34] += -0.001 * dy
    exp[0, 46] += -0.001 * dy
    return exp
