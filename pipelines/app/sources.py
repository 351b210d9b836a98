"""Register a portrait into a :class:`~.types.Source`: face track + the renderer's F and M.

Used by the Face Register node and by every family's command line, so a SOURCE is built
one way everywhere.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..core import weights
from ..core.errors import TalkingHeadError
from ..core.types import ModelBundle, Source

DETECTORS = ("mediapipe", "insightface")
_OPEN: list = []  # detectors to close before the interpreter exits (see close_detectors)


def close_detectors() -> None:
    """Close MediaPipe graphs explicitly: their own __del__ fails during interpreter
    teardown and prints a traceback after an otherwise clean run."""
    while _OPEN:
        _OPEN.pop().close()


def make_detector(kind: str = "mediapipe", roots: Optional[dict] = None, download: bool = False):
    """A face detector whose model files come from the aux models folder."""
    from .. import face

    if kind == "mediapipe":
        paths = weights.resolve("aux", "mediapipe", roots, download=download)
        detector = face.MediaPipeFaceDetector(paths["face_landmarker"], paths["face_detector"])
        _OPEN.append(detector)
        return detector
    if kind == "insightface":
        found = {w.role: weights.find(w, roots) for w in weights.entries("aux", "insightface", True)}
        if None in found.values():
            missing = [w for w in weights.entries("aux", "insightface", True) if found[w.role] is None]
            raise TalkingHeadError(
                "The insightface detector needs files that are not installed (they carry a "
                "non-commercial licence, so the pack never downloads them itself):\n"
                + weights.missing_message(missing, roots) + "\nOr choose the 'mediapipe' detector.")
        return face.InsightFaceDetector(found["insight_detector"], found["insight_landmark106"],
                                        found["landmark203"])
    raise TalkingHeadError(f"unknown detector {kind!r}; choose one of {', '.join(DETECTORS)}")


def parse_box(text: str, what: str = "manual_box", count: int = 4):
    """'x, y, w, h' (pixels) -> tuple of floats; '' -> None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        values = [float(v) for v in text.replace(";", ",").replace(" ", ",").split(",") if v]
    except ValueError:
        values = []
    if len(values) != count:
        form = "x, y, width, height" if count == 4 else "left_x, left_y, right_x, right_y"
        raise TalkingHeadError(f"{what} must be {count} numbers in pixels ({form}); got {text!r}")
    return tuple(values)


def mask_to_box(mask: torch.Tensor):
    """Bounding box (x, y, w, h) of the non-zero part of a MASK's first frame, or None."""
    m = torch.as_tensor(mask)
    m = m[0] if m.ndim == 3 else m
    ys, xs = torch.nonzero(m > 0.5, as_tuple=True)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = xs.min().item(), xs.max().item(), ys.min().item(), ys.max().item()
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def register_source(frames, fps: float, detector, renderer: Optional[ModelBundle] = None,
                    smooth_window: int = 5, manual_box=None, manual_eyes=None,
                    whole_image_fallback: bool = False, scale: float = 2.3, vx_ratio: float = 0.0,
                    vy_ratio: float = -0.125, batch_size: int = 8,
                    progress: Optional[Callable[[int, int], None]] = None,
                    check_interrupt: Optional[Callable[[], None]] = None) -> Source:
    """frames: (N,H,W,3) float 0..1 -> Source with crops, transforms, landmarks and, when a
    renderer bundle is given, the motion extractor's info and F's appearance features."""
    from .. import face
    from ..liveportrait import render

    n = int(frames.shape[0])
    steps = n * (3 if renderer is not None else 1)
    report = (lambda done: progress(done, steps)) if progress else None
    track = face.register_faces(
        frames, detector, smooth_window=smooth_window, manual_box=manual_box,
        manual_eyes=manual_eyes, scale=scale, vx_ratio=vx_ratio, vy_ratio=vy_ratio,
        whole_image_fallback=whole_image_fallback,
        progress=(lambda d, t: report(d)) if report else None, check_interrupt=check_interrupt)
    motion = appearance = None
    if renderer is not None:
        x256 = face.crop_inputs_256(track.crops512)
        motion = render.extract_motion(renderer, x256, batch_size=batch_size,
                                       progress=(lambda d: report(n + d)) if report else None,
                                       check_interrupt=check_interrupt)
        appearance = render.extract_appearance(renderer, x256, batch_size=batch_size,
                                               progress=(lambda d: report(2 * n + d)) if report else None,
                                               check_interrupt=check_interrupt)
    frames_t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    frames_t = frames_t.float() / 255.0 if frames_t.dtype == torch.uint8 else frames_t.float()
    mesh = torch.from_numpy(track.mesh478_crop).float() if track.mesh478_crop is not None else None
    return Source(
        frames=frames_t.cpu(), fps=float(fps), crops=torch.from_numpy(track.crops512),
        crop_to_frame=torch.from_numpy(np.asarray(track.crop_to_frame, np.float64)),
        landmarks=torch.from_numpy(np.asarray(track.landmarks, np.float32)),
        landmark_scheme=track.scheme, face_found=torch.from_numpy(track.face_found),
        motion=motion, appearance=appearance, mesh478=mesh, kinds=list(track.kinds),
        notes=list(track.notes))


def describe(source: Source) -> str:
    kinds = {k: source.kinds.count(k) for k in dict.fromkeys(source.kinds)}
    parts = [repr(source), "frames: " + ", ".join(f"{v} {k}" for k, v in kinds.items())]
    parts += source.notes
    return "\n".join(parts)
