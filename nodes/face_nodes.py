"""Face Register (frames -> SOURCE) and Face Crop Preview (SOURCE -> IMAGE)."""
from __future__ import annotations

import types

import numpy as np
import torch

from ..pipelines.app import models as model_cache
from ..pipelines.app import steps
from ..pipelines.core import choices, images
from ..pipelines.face import TrackSettings
from ..pipelines.face.register import describe, mask_to_box, parse_box
from . import host
from .convert import check_fps, check_image
from .registry import LP_MODELS, SOURCE, register

NO_FACE = ["error (ask for a box)", "use whole image"]


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
                "detector": (list(choices.DETECTORS), {"default": "mediapipe", "tooltip":
                             "mediapipe: works everywhere. insightface: LivePortrait's own "
                             "106/203-point landmarks (files installed by hand, non-commercial)."}),
                "smoothing": ("INT", {"default": 5, "min": 1, "max": 61,
                                      "tooltip": "Frames averaged for the crop of a video (removes jitter)."}),
                "if_no_face": (NO_FACE, {"default": NO_FACE[0], "tooltip":
                               "No face in any frame and no box: stop with a message, or use a "
                               "centred square of the whole image."}),
                "auto_download": ("BOOLEAN", {"default": True, "tooltip":
                                  "Download the detector's files into models/talking_head_aux when missing."}),
            },
            "optional": {
                "models": (LP_MODELS, {"tooltip": "Renderer models: needed by Ditto and LivePortrait, not MuseTalk."}),
                "face_mask": ("MASK", {"tooltip": "A painted mask around the face: used as the manual box."}),
                "manual_box": ("STRING", {"default": "", "tooltip": "x, y, width, height in pixels"}),
                "manual_eyes": ("STRING", {"default": "", "tooltip": "left_x, left_y, right_x, right_y in pixels"}),
                "crop_scale": ("FLOAT", {"default": 2.3, "min": 1.0, "max": 4.0, "step": 0.05,
                                         "tooltip": "Crop size relative to the face (2.3 = the networks' training)."}),
                "vx_ratio": ("FLOAT", {"default": 0.0, "min": -0.5, "max": 0.5, "step": 0.005,
                                       "tooltip": "Shift the crop sideways (fraction of its size)."}),
                "vy_ratio": ("FLOAT", {"default": -0.125, "min": -0.5, "max": 0.5, "step": 0.005,
                                       "tooltip": "Shift the crop up (-) or down (+) (fraction of its size)."}),
                "batch_size": ("INT", {"default": 8, "min": 1, "max": 64,
                                       "tooltip": "Frames per batch through the renderer's extractors."}),
            },
        }

    def register(self, frames, fps, detector="mediapipe", smoothing=5, if_no_face=NO_FACE[0],
                 auto_download=True, models=None, face_mask=None, manual_box="", manual_eyes="",
                 crop_scale=2.3, vx_ratio=0.0, vy_ratio=-0.125, batch_size=8):
        frames, fps = check_image(frames, "frames"), check_fps(fps)
        box = parse_box(manual_box)
        if box is None and face_mask is not None:
            box = mask_to_box(face_mask)
        eyes = parse_box(manual_eyes, "manual_eyes")
        eyes = None if eyes is None else (eyes[:2], eyes[2:])
        settings = TrackSettings(smooth_window=smoothing, manual_box=box, manual_eyes=eyes,
                                 whole_image_fallback=if_no_face == NO_FACE[1], scale=crop_scale,
                                 vx_ratio=vx_ratio, vy_ratio=vy_ratio)
        det = model_cache.detector(detector, host.model_roots(), auto_download)
        src = steps.register(frames.numpy(), fps, det, models, settings, host.context("face register"),
                             batch_size)
        return src, describe(src)


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
                             "all_points": ("BOOLEAN", {"default": False,
                                            "tooltip": "Draw every landmark, not only those that placed the crop."})}}

    def preview(self, source, all_points=False):
        from ..pipelines.face import draw_preview

        track = types.SimpleNamespace(kinds=source.kinds or ["detected"] * len(source),
                                      crop_to_frame=source.crop_to_frame.numpy(),
                                      landmarks=source.landmarks.numpy(), scheme=source.landmark_scheme)
        frames = source.frames.numpy()
        ctx = host.context("preview")
        out = []
        for i in range(len(source)):
            ctx.check()
            out.append(draw_preview(frames[i], track, i, draw_all_points=all_points))
        return torch.from_numpy(images.to_float(np.stack(out))), images.to_float(source.crops)
