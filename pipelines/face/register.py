"""Frames -> a registered SOURCE (the face part): the track's crops, transforms and
landmarks packed into :class:`~..core.types.Source`. The renderer's appearance and
motion features are added by ``liveportrait.source.attach_renderer`` when a family needs
them (Ditto, LivePortrait, JoyVASA; MuseTalk does not)."""
from __future__ import annotations

import numpy as np
import torch

from ..core import images
from ..core.errors import TalkingHeadError
from ..core.runtime import CPU, RunContext
from ..core.types import Source
from .track import TrackSettings, register_faces


def register_source(frames, fps: float, detector, settings: TrackSettings = TrackSettings(),
                    ctx: RunContext = CPU) -> Source:
    """frames: (N,H,W,3) float 0..1 or uint8 (numpy or torch) -> Source."""
    track = register_faces(frames, detector, settings, ctx)
    frames_u8 = images.to_uint8(frames if isinstance(frames, torch.Tensor) else np.asarray(frames))
    frames_u8 = frames_u8 if isinstance(frames_u8, torch.Tensor) else torch.from_numpy(frames_u8)
    mesh = torch.from_numpy(track.mesh478_crop).float() if track.mesh478_crop is not None else None
    return Source(
        frames=frames_u8.contiguous(), fps=float(fps), crops=torch.from_numpy(track.crops512),
        crop_to_frame=torch.from_numpy(np.asarray(track.crop_to_frame, np.float64)),
        landmarks=torch.from_numpy(np.asarray(track.landmarks, np.float32)),
        landmark_scheme=track.scheme, face_found=torch.from_numpy(track.face_found),
        mesh478=mesh, kinds=list(track.kinds), notes=list(track.notes))


def parse_box(text: str, what: str = "manual_box", count: int = 4):
    """'x, y, w, h' (pixels) -> tuple of floats; '' -> None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        values = [float(v) for v in text.replace(";", ",").replace(" ", ",").split(",") if v]
    except ValueError:
        values = []
    if len(values) != count or not all(np.isfinite(values)):
        form = "left_x, left_y, right_x, right_y" if "eye" in what else "x, y, width, height"
        raise TalkingHeadError(f"{what} must be {count} numbers in pixels ({form}); got {text!r}. "
                               f"Give them separated by commas, or leave {what} empty.")
    return tuple(values)


def mask_to_box(mask):
    """Bounding box (x, y, w, h) of the non-zero part of a MASK's first frame, or None."""
    m = torch.as_tensor(mask)
    m = m[0] if m.ndim == 3 else m
    ys, xs = torch.nonzero(m > 0.5, as_tuple=True)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = xs.min().item(), xs.max().item(), ys.min().item(), ys.max().item()
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def describe(source: Source) -> str:
    """The info line of a SOURCE: size, fps, how each frame was placed, warnings."""
    kinds = {k: source.kinds.count(k) for k in dict.fromkeys(source.kinds)}
    parts = [repr(source), "frames: " + ", ".join(f"{v} {k}" for k, v in kinds.items())]
    parts += source.notes
    return "\n".join(parts)
