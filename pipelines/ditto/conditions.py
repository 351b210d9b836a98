"""The per-frame LMDM condition (spec ditto.md §3.5).

``[HuBERT 1024 | emotion 8 | eye_open 2 | eye_ball 6 | sc 63]`` = 1103 floats per
frame. Everything is plain float32 copying so it matches the reference bit for bit.

The condition source is either the user's portrait or the reference identity baked into
the released cfg (``ch_info``); the official pipeline uses the latter, so the model sees
the identity it was tuned with and the user's face only enters through retargeting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.errors import ShapeError
from ..core.choices import EMOTIONS
from .frames import mirror_indices
from .motion_layout import info_from_arrays, info_to_row, motion_info_frame

EMOTION_LOGIT = 8.0   # a chosen label gets logit 8 before the softmax (p = 0.99766)


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - np.amax(v))
    return e / np.sum(e)


def _label(x) -> int:
    if isinstance(x, str):
        name = x.strip().lower()
        if name not in EMOTIONS:
            raise ShapeError(f"unknown emotion '{x}'; choose one of {', '.join(EMOTIONS)}")
        return EMOTIONS.index(name)
    if isinstance(x, (bool, float)) or not isinstance(x, (int, np.integer)):
        raise ShapeError(f"an emotion label must be an int 0-7 or a name, got {x!r}")
    if not 0 <= int(x) < 8:
        raise ShapeError(f"emotion label {x} is outside 0-7 ({', '.join(EMOTIONS)})")
    return int(x)


def emotion_row(labels) -> np.ndarray:
    """One label or a mixture of labels -> (8,) float32 distribution."""
    labels = [labels] if not isinstance(labels, (list, tuple)) else list(labels)
    v = np.zeros(8, dtype=np.float32)
    for lab in labels:
        v[_label(lab)] = EMOTION_LOGIT
    return _softmax(v).astype(np.float32)


def parse_emotion(emo) -> np.ndarray:
    """Emotion setting -> (m,8) float32 table, row ``max(i,0) % m`` used for frame i.

    Accepts an int 0-7 or a name; a list of labels (a mixture); a list of per-frame
    labels/mixtures (a schedule); or an (m,8) / (8,) array of distributions.
    Unlike the reference, NumPy integers are accepted as labels.
    """
    if hasattr(emo, "detach"):
        emo = emo.detach().cpu().numpy()
    if isinstance(emo, np.ndarray) and emo.dtype.kind in "iu":
        emo = emo.tolist()
    if isinstance(emo, np.ndarray) and emo.dtype.kind == "f":
        table = emo.astype(np.float32).reshape(-1, 8) if emo.size % 8 == 0 else None
        if table is None or emo.ndim > 2 or (emo.ndim == 2 and emo.shape[1] != 8):
            raise ShapeError(f"an emotion table must have shape (m,8), got {emo.shape}")
        return table
    if isinstance(emo, (list, tuple)) and emo and isinstance(emo[0], (list, tuple)):
        return np.stack([emotion_row(e) for e in emo]).astype(np.float32)
    return emotion_row(emo).reshape(1, 8)


def emotion_schedule(keyframes: dict, n_frames: int) -> np.ndarray:
    """{frame: emotion} -> (n_frames, 8), linearly blended between keyframes and held
    before the first / after the last one."""
    if not keyframes:
        raise ShapeError("emotion_schedule needs at least one keyframe")
    frames = sorted(int(f) for f in keyframes)
    rows = np.stack([parse_emotion(keyframes[f] if f in keyframes else keyframes[str(f)])[0]
                     for f in frames])
    i = np.arange(n_frames, dtype=np.float64)
    out = np.stack([np.interp(i, frames, rows[:, c]) for c in range(8)], axis=1)
    return out.astype(np.float32)


@dataclass
class ConditionSource:
    """Who the LMDM is conditioned on: frame-0 motion info, canonical keypoints, eyes."""

    x_s_info: dict            # frame 0: pitch/yaw/roll (1,66), t (1,3), exp (1,63), scale (1,1), kp (1,63)
    eye_open: np.ndarray      # (n,2)
    eye_ball: np.ndarray      # (n,6)

    def __post_init__(self):
        self.x_s_info = info_from_arrays(self.x_s_info)
        self.eye_open = np.asarray(self.eye_open, dtype=np.float32).reshape(-1, 2)
        self.eye_ball = np.asarray(self.eye_ball, dtype=np.float32).reshape(-1, 6)
        if len(self.eye_open) != len(self.eye_ball) or len(self.eye_open) == 0:
            raise ShapeError("eye_open and eye_ball need the same number (>0) of frames")

    @property
    def sc(self) -> np.ndarray:
        return self.x_s_info["kp"].reshape(-1).astype(np.float32)

    @property
    def kp_cond(self) -> np.ndarray:
        """The first window's ``cond_frame``: this frame's motion as a 265-d vector."""
        return info_to_row(self.x_s_info)

    @classmethod
    def from_motion(cls, motion_info, eye_open, eye_ball, n_frames: Optional[int] = None):
        """From a MotionInfo (N frames) and eye attributes; ``n_frames`` limits the eye
        rows to the template's first frames."""
        eo = np.asarray(_np(eye_open), np.float32).reshape(-1, 2)
        eb = np.asarray(_np(eye_ball), np.float32).reshape(-1, 6)
        if n_frames:
            eo, eb = eo[:n_frames], eb[:n_frames]
        return cls(motion_info_frame(motion_info, 0), eo, eb)

    @classmethod
    def from_ch_info(cls, ch_info: dict):
        """From the cfg's ``ch_info`` dict (x_s_info_lst, eye_open_lst, eye_ball_lst[, sc])."""
        missing = {"x_s_info_lst", "eye_open_lst", "eye_ball_lst"} - set(ch_info)
        if missing:
            raise ShapeError(f"the cfg's ch_info lacks {sorted(missing)}; the file may be damaged "
                             "(or pass use_reference_identity=False)")
        info = dict(ch_info["x_s_info_lst"][0])
        if "kp" not in info and "sc" in ch_info:
            info["kp"] = np.asarray(ch_info["sc"]).reshape(1, -1)
        return cls(info, np.concatenate([np.asarray(e).reshape(-1, 2) for e in ch_info["eye_open_lst"]]),
                   np.concatenate([np.asarray(e).reshape(-1, 6) for e in ch_info["eye_ball_lst"]]))


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


class ConditionHandler:
    """``handler(audio_feats (n,1024), idx)`` -> (n, cond_dim) float32 for global frames
    idx .. idx+n-1 (negative frames, e.g. online warm-up silence, use row 0)."""

    def __init__(self, source: ConditionSource, emo=4, eye_f0_mode: bool = False,
                 use_emo: bool = True, use_eye_open: bool = True, use_eye_ball: bool = True,
                 use_sc: bool = True):
        self.source = source
        self.emo = parse_emotion(emo)
        self.eye_f0_mode = bool(eye_f0_mode)
        self.use = (use_emo, use_eye_open, use_eye_ball, use_sc)

    @property
    def dim(self) -> int:
        return 1024 + sum(n for n, on in zip((8, 2, 6, 63), self.use) if on)

    def __call__(self, aud: np.ndarray, idx: int = 0) -> np.ndarray:
        aud = np.asarray(_np(aud), dtype=np.float32)
        n = len(aud)
        frames = np.maximum(np.arange(idx, idx + n), 0)
        parts = [aud]
        if self.use[0]:
            parts.append(self.emo[frames % len(self.emo)])
        n_eye = len(self.source.eye_open)
        if self.eye_f0_mode or n_eye == 1:
            eye_rows = np.zeros(n, dtype=np.int64)
        else:  # a video template: its eye states ping-pong like its frames
            eye_rows = mirror_indices(frames, n_eye)
        if self.use[1]:
            parts.append(self.source.eye_open[eye_rows])
        if self.use[2]:
            parts.append(self.source.eye_ball[eye_rows])
        if self.use[3]:
            parts.append(np.broadcast_to(self.source.sc, (n, 63)))
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)
