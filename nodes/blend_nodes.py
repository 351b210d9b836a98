"""Blend: paste rendered face crops back into the original frames, with blend modes and
regions. Cheap to re-run: change a widget here and only this node (and what follows) runs."""
from __future__ import annotations

import os

import numpy as np
import torch

from ..pipelines import composite
from ..pipelines.core import choices, images
from ..pipelines.core.errors import ShapeError
from . import host
from .convert import check_image
from .registry import KEYPOINTS, SOURCE, register

MODE_HELP = "; ".join(f"{k}: {v}" for k, v in choices.MODE_HELP.items())
REGION_HELP = "; ".join(f"{k}: {v}" for k, v in choices.REGION_HELP.items())


@register("Blend", "render")
class Blend:
    DESCRIPTION = ("Paste the rendered 512 crops back into the source frames.\n" + MODE_HELP + "\n"
                   + REGION_HELP + "\nfeather: width in frame pixels of the soft edge (0 = the "
                   "official edge for 'crop', 16 crop px for the landmark regions). color_match "
                   "matches the render's colour to the original inside the mask. Defaults "
                   "(replace + crop) reproduce the original Ditto/LivePortrait putback exactly. "
                   "Outputs the frames and the mask actually used; the node shows the mask over "
                   "the first frame.")
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("frames", "mask")
    FUNCTION = "blend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "rendered": ("IMAGE", {"tooltip": "Rendered face crops (Decode output)."}),
                "source": (SOURCE,),
                "mode": (list(choices.BLEND_MODES), {"default": "replace", "tooltip": MODE_HELP}),
                "region": (list(choices.BLEND_REGIONS), {"default": "crop", "tooltip": REGION_HELP}),
                "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "Render weight for mode 'custom'."}),
                "feather": ("INT", {"default": 0, "min": 0, "max": 256, "tooltip":
                            "Soft edge in frame pixels (0 = the official edge)."}),
                "color_match": (list(choices.COLOR_MATCH), {"default": "off", "tooltip":
                                "Match the render's colour to the original inside the mask."}),
                "crop_edge": (["auto", *choices.CROP_EDGES], {
                    "default": "auto", "tooltip": "The official feathered edge of region 'crop': "
                    "LivePortrait's or Ditto's template (auto: the motion producer's)."}),
            },
            "optional": {
                "keypoints": (KEYPOINTS, {"tooltip": "Tells which source frame each rendered frame "
                                                     "belongs to (video sources) and the producer's edge."}),
                "frames": ("IMAGE", {"tooltip": "Frames to paste into instead of the source's own."}),
            },
        }

    def blend(self, rendered, source, mode="replace", region="crop", alpha=1.0, feather=0,
              color_match="off", crop_edge="auto", keypoints=None, frames=None):
        rendered = check_image(rendered, "rendered")
        base = source.frames if frames is None else images.to_uint8(check_image(frames, "frames"))
        if tuple(base.shape[:3]) != tuple(source.frames.shape[:3]):
            raise ShapeError(f"'frames' are {tuple(base.shape[:3])} (frames, height, width) but the source "
                             f"was registered on {tuple(source.frames.shape[:3])}; connect frames of the "
                             "same count and size as the ones Face Register saw.")
        index = keypoints.source_index if keypoints is not None else None
        if crop_edge == "auto":
            crop_edge = keypoints.crop_edge if keypoints is not None else "liveportrait"
        spec = composite.BlendSpec(mode, alpha, region, feather if feather > 0 else None, color_match,
                                   crop_edge)
        ctx = host.context("blend")
        masks = composite.blend_masks(source, spec, ctx.with_progress(None))
        index = composite.frame_index(rendered.shape[0], len(source), index)
        out = torch.empty((rendered.shape[0],) + tuple(base.shape[1:]), dtype=torch.float32)
        plans: dict = {}
        for s in range(0, rendered.shape[0], 8):
            ctx.check()
            rows = slice(s, s + 8)
            out[rows] = images.to_float(torch.from_numpy(composite.paste_back(
                base, rendered[rows], source.crop_to_frame, masks, index[rows], spec, ctx, plans)))
            ctx.report(min(s + 8, rendered.shape[0]), rendered.shape[0])
        preview = _mask_preview(base[0], masks[0])
        return {"ui": {"images": [preview]}, "result": (out, masks[index])}


def _mask_preview(frame: torch.Tensor, mask: torch.Tensor) -> dict:
    """The mask over the first frame (red tint) saved in the temp folder for the node's preview."""
    from PIL import Image

    rgb = images.to_float(frame.numpy())
    tint = np.array([1.0, 0.15, 0.15], np.float32)
    m = mask.numpy()[..., None]
    shown = rgb * (1 - 0.55 * m) + tint * 0.55 * m
    folder = host.temp_dir()
    name = f"ths_mask_{os.getpid()}_{abs(hash(mask.numpy().tobytes())) % 10**10}.png"
    Image.fromarray(images.to_uint8(shown)).save(os.path.join(folder, name))
    return {"filename": name, "subfolder": "", "type": "temp"}
