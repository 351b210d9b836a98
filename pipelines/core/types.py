"""The values that flow between the pack's nodes, each a small dataclass defined once.

ComfyUI's own types stay at the edges (IMAGE [B,H,W,3] float 0..1, MASK [B,H,W],
AUDIO {"waveform": [B,C,T], "sample_rate"}); inside, nodes pass these.
Every constructor validates shapes so that a wrongly wired graph fails with a message
naming the value and the expected shape, not deep inside a network.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

from .errors import ShapeError


def _check(name: str, value, shape: tuple, what: str) -> None:
    """``shape`` entries: int (exact) or None (any size)."""
    if value is None:
        raise ShapeError(f"{what}: '{name}' is missing")
    got = tuple(value.shape)
    if len(got) != len(shape) or any(
        isinstance(s, int) and s != g for s, g in zip(shape, got)
    ):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ShapeError(f"{what}: '{name}' has shape {got}, expected {want}")


def _same_length(what: str, **arrays) -> int:
    lengths = {k: int(v.shape[0]) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        raise ShapeError(f"{what}: per-frame fields differ in length: {lengths}")
    return next(iter(lengths.values())) if lengths else 0


# ---------------------------------------------------------------------------------------
# model bundles


@dataclass
class ModelBundle:
    """Loaded networks of one family plus where and how they run.

    ``nets`` maps a role name (e.g. "appearance", "warping", "unet") to an ``nn.Module``
    or another loaded object (an ONNX session path, a parsed config).
    """

    family: str
    nets: dict
    device: torch.device
    dtype: torch.dtype
    files: dict = field(default_factory=dict)  # role -> path it was loaded from
    extra: dict = field(default_factory=dict)  # family-specific (e.g. Ditto cfg)

    def __getitem__(self, role: str):
        try:
            return self.nets[role]
        except KeyError:
            raise ShapeError(
                f"the {self.family} model bundle has no '{role}' network "
                f"(it has: {', '.join(sorted(self.nets))})"
            ) from None

    def __repr__(self) -> str:  # ComfyUI prints values in some error paths; keep it short
        return f"ModelBundle({self.family}, {sorted(self.nets)}, {self.device}, {self.dtype})"


# ---------------------------------------------------------------------------------------
# a registered portrait


@dataclass
class MotionInfo:
    """Motion-extractor outputs per frame (LivePortrait M), raw.

    pitch/yaw/roll: (N,66) bin logits; t: (N,3); exp, kp: (N,21,3); scale: (N,1).
    """

    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    exp: torch.Tensor
    scale: torch.Tensor
    kp: torch.Tensor

    def __post_init__(self):
        what = "MotionInfo"
        n = self.t.shape[0]
        for k in ("pitch", "yaw", "roll"):
            _check(k, getattr(self, k), (n, 66), what)
        _check("t", self.t, (n, 3), what)
        self.exp = self.exp.reshape(n, -1, 3)
        self.kp = self.kp.reshape(n, -1, 3)
        _check("exp", self.exp, (n, 21, 3), what)
        _check("kp", self.kp, (n, 21, 3), what)
        _check("scale", self.scale.reshape(n, -1), (n, 1), what)
        self.scale = self.scale.reshape(n, 1)

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")}

    def select(self, index) -> "MotionInfo":
        return MotionInfo(**{k: v[index] for k, v in self.as_dict().items()})


@dataclass
class Source:
    """A registered portrait (image: N=1; video: N frames).

    frames: (N,H,W,3) uint8 RGB, the original frames (CPU; converted once at the edge).
    crops: (N,512,512,3) uint8, the similarity crops the networks see (at 512).
    crop_to_frame: (N,3,3) float64, maps crop pixel coords to original frame coords.
    landmarks: (N,K,2) float32 in original frame pixels; ``landmark_scheme`` names K's layout.
    face_found: (N,) bool, False where the track was reused or a fallback was used.
    motion: the motion extractor's outputs per frame (None until the renderer has run).
    appearance: (N_app,32,16,64,64) float16 on CPU (F's output; official sizes), N_app = N or 1.
    mesh478: (N,478,3) MediaPipe mesh in normalised crop coordinates (Ditto's eye condition).
    kinds: per frame how it was placed (detected/eyes/reused/manual/fallback).
    """

    frames: torch.Tensor
    fps: float
    crops: torch.Tensor
    crop_to_frame: torch.Tensor
    landmarks: torch.Tensor
    landmark_scheme: str
    face_found: torch.Tensor
    motion: Optional[MotionInfo] = None
    appearance: Optional[torch.Tensor] = None
    mesh478: Optional[torch.Tensor] = None
    kinds: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # warnings for the info string

    def __post_init__(self):
        what = "SOURCE"
        _check("frames", self.frames, (None, None, None, 3), what)
        if self.frames.dtype != torch.uint8:
            raise ShapeError(f"{what}: frames must be uint8 RGB (got {self.frames.dtype}); "
                             "convert IMAGE values with core.images.to_uint8")
        n = _same_length(what, frames=self.frames, crops=self.crops,
                         crop_to_frame=self.crop_to_frame, landmarks=self.landmarks,
                         face_found=self.face_found)
        _check("crops", self.crops, (n, None, None, 3), what)
        _check("crop_to_frame", self.crop_to_frame, (n, 3, 3), what)
        _check("landmarks", self.landmarks, (n, None, 2), what)
        if self.motion is not None and len(self.motion) != n:
            raise ShapeError(f"{what}: motion has {len(self.motion)} frames, source has {n}")
        if self.appearance is not None:
            _check("appearance", self.appearance, (None, None, None, None, None), what)
            if self.appearance.shape[0] not in (1, n):
                raise ShapeError(f"{what}: appearance has {self.appearance.shape[0]} frames, "
                                 f"expected 1 or {n}")
        if not math.isfinite(float(self.fps)) or self.fps <= 0:
            raise ShapeError(f"{what}: fps must be a positive number of frames per second, "
                             f"got {self.fps}")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __repr__(self) -> str:
        h, w = self.frames.shape[1:3]
        return f"Source({len(self)} frames {w}x{h} @ {self.fps:.3f} fps, {self.landmark_scheme})"


# ---------------------------------------------------------------------------------------
# audio features, keypoints, warped features (MOTION is in core/motion.py)


@dataclass
class AudioFeatures:
    """Per-video-frame audio features at ``fps`` (one row per output frame).

    features: (T,D) for Ditto's HuBERT (D=1024), (T,50,384) for MuseTalk's whisper windows,
    (T,D) for JoyVASA (its window-wise HuBERT features, D=256, T a whole number of windows).
    kind: "hubert", "whisper" or "joyvasa". seconds: the audio's duration.
    """

    features: torch.Tensor
    kind: str
    fps: float
    seconds: float

    def __post_init__(self):
        if self.kind not in ("hubert", "whisper", "joyvasa"):
            raise ShapeError(f"AUDIO_FEATURES: unknown kind '{self.kind}'")
        if self.kind in ("hubert", "joyvasa"):
            _check("features", self.features, (None, None), f"AUDIO_FEATURES ({self.kind})")
        else:
            _check("features", self.features, (None, None, None), "AUDIO_FEATURES (whisper)")

    def __len__(self) -> int:
        return int(self.features.shape[0])


@dataclass
class Keypoints:
    """Source and driven implicit keypoints per output frame, after stitching.

    x_s, x_d: (T,21,3); source_index: (T,) int64 into the SOURCE's frames.
    """

    x_s: torch.Tensor
    x_d: torch.Tensor
    fps: float
    source_index: torch.Tensor
    crop_edge: str = "liveportrait"  # the producer's paste-back template (see core/motion.py)

    def __post_init__(self):
        n = _same_length("KEYPOINTS", x_s=self.x_s, x_d=self.x_d, source_index=self.source_index)
        _check("x_s", self.x_s, (n, 21, 3), "KEYPOINTS")
        _check("x_d", self.x_d, (n, 21, 3), "KEYPOINTS")

    def __len__(self) -> int:
        return int(self.x_d.shape[0])


@dataclass
class WarpedFeatures:
    """W's output per frame, (T,256,64,64) float16 on CPU between nodes (official sizes)."""

    features: torch.Tensor
    fps: float
    source_index: torch.Tensor

    def __post_init__(self):
        n = self.features.shape[0]
        _check("features", self.features, (n, None, None, None), "WARPED")
        _check("source_index", self.source_index, (n,), "WARPED")

    def __len__(self) -> int:
        return int(self.features.shape[0])
