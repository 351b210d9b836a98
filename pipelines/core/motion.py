"""MOTION: per-frame motion in LivePortrait's space, the common currency of every producer
(a driving video, Ditto, JoyVASA, expression editing, keyframes, a mix of two motions).

The contract, checked when a :class:`Motion` is built:

* per frame ``t``: ``scale`` (T,1), ``pitch``/``yaw``/``roll`` (T,) in degrees, ``t`` (T,3)
  and ``exp`` (T,21,3), all finite; ``source_index`` (T,) says which source frame each
  output frame belongs to (0 for an image source); ``fps`` > 0 is the output frame rate.
* ``kind`` says how the renderer composes it with the source:

  - ``"driving"``: a driver's own motion (a driving video's, JoyVASA's). It is composed
    with the source by LivePortrait's driving formula; ``driving`` (a :class:`DrivingSpec`)
    is required and says how (relative or absolute, expression- or pose-friendly, ...).
  - ``"absolute"``: motion already expressed for this source (Ditto's motion stitch,
    expression edits): the driven keypoints are the source's canonical keypoints posed by
    it. ``driving`` must be None.

* ``origin`` names the producer ("video", "ditto", "joyvasa", "expression", "mix", ...), for
  information and error messages; ``crop_edge`` is the paste-back template of the
  producer's reference ("liveportrait" 16 px or "ditto" 26 px), which the Blend node's
  "auto" edge follows.
* ``restitch`` (optional) lets a producer re-derive its motion with new controls (Ditto
  re-runs its motion stitch with pose offsets, fades and blinks; see core/controls.py).
* ``eye_ratio`` (T,3) / ``lip_ratio`` (T,2): optional inputs of eye/lip retargeting.

Values between nodes are never changed in place (the host caches them): edits return a
new Motion (:meth:`Motion.replace`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional, Protocol

import torch

from .choices import CROP_EDGES
from .errors import ShapeError
from .timeline import frame_mapping

KINDS = ("driving", "absolute")
POSE = ("pitch", "yaw", "roll")


@dataclass(frozen=True)
class DrivingSpec:
    """How a driver's own motion is composed with the source (LivePortrait spec §1.8).

    relative: move the source by the driver's change from its first frame (else copy the
        driver's pose and expression). expression_friendly: rescale relative motion to the
        source's face size (image sources). multiplier: scale of the whole motion.
    driver_is_image: the driver is one still image (the official formula then subtracts
        a neutral expression instead of the driver's first frame).
    formula: "liveportrait" (the official composition) or "joyvasa" (JoyVASA's variant: see
        liveportrait.keypoints.DriveOptions).
    """

    relative: bool = True
    expression_friendly: bool = True
    multiplier: float = 1.0
    driver_is_image: bool = False
    formula: str = "liveportrait"

    def __post_init__(self):
        if not math.isfinite(float(self.multiplier)) or self.multiplier < 0:
            raise ShapeError(f"MOTION: driving multiplier must be a finite number >= 0, "
                             f"got {self.multiplier}")
        if self.formula not in ("liveportrait", "joyvasa"):
            raise ShapeError(f"MOTION: unknown driving formula {self.formula!r}")


class Restitch(Protocol):
    """A producer's hook to derive its motion again with new controls (core/controls.py)."""

    def with_controls(self, controls) -> "Motion":  # pragma: no cover - protocol
        ...


def _check(name: str, value, shape: tuple) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ShapeError(f"MOTION: '{name}' must be a tensor, got {type(value).__name__}")
    if tuple(value.shape) != shape:
        raise ShapeError(f"MOTION: '{name}' has shape {tuple(value.shape)}, expected {shape}")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ShapeError(f"MOTION: '{name}' holds NaN or infinite values; the producer of this "
                         "motion failed (check its inputs)")
    return value


@dataclass
class Motion:
    """Per-frame LivePortrait-space motion and how to render it (see the module docstring)."""

    scale: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    exp: torch.Tensor
    fps: float
    source_index: torch.Tensor
    kind: str
    origin: str
    driving: Optional[DrivingSpec] = None
    crop_edge: str = "liveportrait"
    eye_ratio: Optional[torch.Tensor] = None
    lip_ratio: Optional[torch.Tensor] = None
    restitch: Optional[Restitch] = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ShapeError(f"MOTION: unknown kind {self.kind!r}; a motion is 'driving' (a "
                             "driver's own motion) or 'absolute' (already for this source)")
        if self.kind == "driving" and not isinstance(self.driving, DrivingSpec):
            raise ShapeError(f"MOTION from {self.origin!r} is a driving motion but says nothing "
                             "about how to drive (its DrivingSpec is missing)")
        if self.kind == "absolute" and self.driving is not None:
            raise ShapeError(f"MOTION from {self.origin!r} is absolute (already for its source) "
                             "but carries driving options; absolute motion is not driven")
        if not self.origin or not isinstance(self.origin, str):
            raise ShapeError("MOTION: 'origin' must name the producer of the motion")
        if self.crop_edge not in CROP_EDGES:
            raise ShapeError(f"MOTION: crop_edge must be one of {CROP_EDGES}, got {self.crop_edge!r}")
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            fps = float("nan")
        if not math.isfinite(fps) or fps <= 0:
            raise ShapeError(f"MOTION: fps must be a positive number, got {self.fps!r}")
        self.fps = fps
        if not isinstance(self.t, torch.Tensor) or self.t.dim() != 2:
            raise ShapeError("MOTION: 't' must be a (T,3) tensor")
        n = int(self.t.shape[0])
        if n == 0:
            raise ShapeError("MOTION has no frames")
        for name in POSE:
            value = getattr(self, name)
            if isinstance(value, torch.Tensor) and value.numel() == n:
                setattr(self, name, value.reshape(n))
            _check(name, getattr(self, name), (n,))
        if isinstance(self.scale, torch.Tensor) and self.scale.numel() == n:
            self.scale = self.scale.reshape(n, 1)
        if isinstance(self.exp, torch.Tensor) and self.exp.numel() == n * 63:
            self.exp = self.exp.reshape(n, 21, 3)
        _check("scale", self.scale, (n, 1))
        _check("t", self.t, (n, 3))
        _check("exp", self.exp, (n, 21, 3))
        _check("source_index", self.source_index, (n,))
        if self.source_index.is_floating_point() or (n and int(self.source_index.min()) < 0):
            raise ShapeError("MOTION: source_index must hold source frame numbers (integers >= 0)")
        for name, width in (("eye_ratio", 3), ("lip_ratio", 2)):
            value = getattr(self, name)
            if value is not None:
                _check(name, value, (n, width))

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def __repr__(self) -> str:
        return (f"Motion({len(self)} frames @ {self.fps:.3f} fps, {self.kind} from {self.origin}, "
                f"{int(self.source_index.max()) + 1} source frame(s))")

    def replace(self, **changes) -> "Motion":
        """A new Motion with ``changes`` (validated again). Edits of the pose or expression
        drop ``restitch`` unless given: the producer's re-derivation would undo them."""
        if any(k in changes for k in ("scale", "pitch", "yaw", "roll", "t", "exp")):
            changes.setdefault("restitch", None)
        return dataclasses.replace(self, **changes)

    def select(self, index) -> "Motion":
        """Frames ``index`` (a slice or index tensor) of this motion, same contract."""
        pick = {k: getattr(self, k)[index] for k in ("scale", "pitch", "yaw", "roll", "t", "exp",
                                                      "source_index")}
        for k in ("eye_ratio", "lip_ratio"):
            v = getattr(self, k)
            pick[k] = None if v is None else v[index]
        return dataclasses.replace(self, restitch=None, **pick)

    def on_source(self, n_source: int, length_mode: str) -> "Motion":
        """This motion walking a source of ``n_source`` frames by a LENGTH_MODES rule (hold
        the last source frame, cycle, ping-pong, or cut to the shorter of the two)."""
        n_out, index = frame_mapping(int(n_source), len(self), length_mode)
        return self.select(slice(0, n_out)).replace(source_index=index)

    @property
    def n_source(self) -> int:
        """Source frames this motion refers to (at least this many)."""
        return int(self.source_index.max()) + 1
