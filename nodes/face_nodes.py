"""Face Register (frames -> SOURCE) and Face Crop Preview (SOURCE -> IMAGE)."""
from __future__ import annotations

import types

import numpy as np
import torch

from ..pipelines.app import sources as source_ops
from . import host
from .convert import check_image
from .registry import LP_MODELS, SOURCE, register

_DETECTOR_CACHE: dict = {}


def get_detector(kind: str, download: bool):
    """One detector per kind for the whole session (MediaPipe graphs take ~1 s to build)."""
    if kind not in _DETECTOR_CACHE:
        _DETECTOR_CACHE[kind] = source_ops.make_detector(kind, host.model_roots(), download)
    return _DETECTOR_CACHE[kind]


@register("Face Register", "face")
class FaceRegister:
    DESCRIPTION = (
        "Find the face in every frame and crop it the way the networks were trained "
        "(similarity crop, 512 px). Video frames are tracked and smoothed; a frame without "
        "a face reuses the nearest good crop, so one bad frame never stops a render. For "
        "faces no detector finds (masks, stylized characters) give manual_box 'x, y, w, h' "
        "in pixels (brows to chin) or a face_mask. With renderer models connected, the "
        "motion extractor and appearance features are computed here once, in batches.")
    RETURN_TYPES = (SOURCE, "STRING")
    RETURN_NAMES = ("source", "info")
    FUNCTION = "register"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("IMAGE",),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                                  "tooltip": "The source's frame rate (connect Load Source's fps)."}),
                "detector": (source_ops.DETECTORS, {"default": "mediapipe"}),
                "smoothing": ("INT", {"default": 5, "min": 1, "max": 61,
                                      "tooltip": "Frames averaged for the crop of a video (removes jitter)."}),
                "if_no_face": (("error (ask for a box)", "use whole image"),
                               {"default": "error (ask for a box)"}),
                "auto_download": ("BOOLEAN", {"default": True}),
            },
            "optional": {
                "models": (LP_MODELS, {"tooltip": "Renderer models: needed by Ditto and LivePortrait, not MuseTalk."}),
                "face_mask": ("MASK", {"tooltip": "A painted mask around the face: used as the manual box."}),
                "manual_box": ("STRING", {"default": "", "tooltip": "x, y, width, height in pixels"}),
                "manual_eyes": ("STRING", {"default": "", "tooltip": "left_x, left_y, right_x, right_y in pixels"}),
                "crop_scale": ("FLOAT", {"default": 2.3, "min": 1.0, "max": 4.0, "step": 0.05}),
                "vx_ratio": ("FLOAT", {"default": 0.0, "min": -0.5, "max": 0.5, "step": 0.005}),
                "vy_ratio": ("FLOAT", {"default": -0.125, "min": -0.5, "max": 0.5, "step": 0.005}),
                "batch_size": ("INT", {"default": 8, "min": 1, "max": 64}),
            },
        }

    def register(self, frames, fps, detector="mediapipe", smoothing=5, if_no_face="error (ask for a box)",
                 auto_download=True, models=None, face_mask=None, manual_box="", manual_eyes="",
                 crop_scale=2.3, vx_ratio=0.0, vy_ratio=-0.125, batch_size=8):
        frames = check_image(frames, "frames")
        box = source_ops.parse_box(manual_box)
        if box is None and face_mask is not None:
            box = source_ops.mask_to_box(face_mask)
        eyes = source_ops.parse_box(manual_eyes, "manual_eyes")
        eyes = None if eyes is None else (eyes[:2], eyes[2:])
        det = get_detector(detector, auto_download)
        progress = host.Progress(frames.shape[0] * (3 if models is not None else 1), "face register")
        src = source_ops.register_source(
            frames.numpy(), fps, det, models, smooth_window=smoothing, manual_box=box,
            manual_eyes=eyes, whole_image_fallback=if_no_face == "use whole image",
            scale=crop_scale, vx_ratio=vx_ratio, vy_ratio=vy_ratio, batch_size=batch_size,
            progress=progress, check_interrupt=host.check_interrupt)
        return src, source_ops.describe(src)


@register("Face Crop Preview", "face")
class FaceCropPreview:
    DESCRIPTION = ("Draw what Face Register found: the crop square (green detected, yellow "
                   "reused, cyan eyes only, magenta manual, red fallback) and the landmarks "
                   "that placed it, on every frame; plus the 512 crops themselves.")
    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("overlay", "crops")
    FUNCTION = "preview"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": (SOURCE,),
                             "all_points": ("BOOLEAN", {"default": False})}}

    def preview(self, source, all_points=False):
        from ..pipelines.face import draw_preview

        track = types.SimpleNamespace(kinds=source.kinds or ["detected"] * len(source),
                                      crop_to_frame=source.crop_to_frame.numpy(),
                                      landmarks=source.landmarks.numpy(), scheme=source.landmark_scheme)
        frames = (source.frames.numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        out = []
        for i in range(len(source)):
            host.check_interrupt()
            out.append(draw_preview(frames[i], track, i, draw_all_points=all_points))
        overlay = torch.from_numpy(np.stack(out)).float() / 255.0
        return overlay, source.crops.float() / 255.0
