"""Blend: paste rendered face crops back into the original frames, with blend modes and
regions. Cheap to re-run: change a widget here and only this node (and what follows) runs."""
from __future__ import annotations

import os

import numpy as np
import torch

from ..pipelines import composite
from ..pipelines.app import render_video
from ..pipelines.core.errors import ShapeError
from . import host
from .convert import check_image
from .registry import KEYPOINTS, SOURCE, register

MODE_HELP = "; ".join(f"{k}: {v}" for k, v in composite.MODE_HELP.items())
REGION_HELP = "; ".join(f"{k}: {v}" for k, v in composite.REGION_HELP.items())


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
                "mode": (tuple(composite.MODES), {"default": "replace", "tooltip": MODE_HELP}),
                "region": (tuple(composite.REGIONS), {"default": "crop", "tooltip": REGION_HELP}),
                "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "Render weight for mode 'custom'."}),
                "feather": ("INT", {"default": 0, "min": 0, "max": 256}),
                "color_match": (tuple(composite.COLOR_MATCH), {"default": "off"}),
                "crop_edge": (("auto", "liveportrait", "ditto"), {
                    "default": "auto", "tooltip": "The official feathered edge of region 'crop': "
                    "LivePortrait's or Ditto's template (auto: Ditto's when the keypoints came from Ditto)."}),
            },
            "optional": {
                "keypoints": (KEYPOINTS, {"tooltip": "Tells which source frame each rendered frame "
                                                     "belongs to (video sources)."}),
                "frames": ("IMAGE", {"tooltip": "Frames to paste into instead of the source's own."}),
            },
        }

    def blend(self, rendered, source, mode="replace", region="crop", alpha=1.0, feather=0,
              color_match="off", crop_edge="auto", keypoints=None, frames=None):
        rendered = check_image(rendered, "rendered")
        base = source.frames if frames is None else check_image(frames, "frames")
        if tuple(base.shape[:3]) != tuple(source.frames.shape[:3]):
            raise ShapeError(f"'frames' are {tuple(base.shape[:3])} (frames, height, width) but the source "
                             f"was registered on {tuple(source.frames.shape[:3])}; connect frames of the "
                             "same count and size as the ones Face Register saw.")
        index = keypoints.source_index if keypoints is not None else None
        if crop_edge == "auto":
            family = keypoints.meta.get("family") if keypoints is not None else None
            crop_edge = "ditto" if family == "ditto" else "liveportrait"
        device = host.torch_device()
        masks = render_video.blend_masks(source, mode, region, alpha, feather if feather > 0 else None,
                                         crop_edge, device)
        out = composite.composite(rendered, base, source.crop_to_frame, masks, 1.0, color_match, device,
                                  progress=host.Progress(rendered.shape[0], "blend"),
                                  check_interrupt=host.check_interrupt, source_index=index)
        mask_out = masks[composite.frame_index(out.shape[0], masks.shape[0], index)]
        return {"ui": {"images": [_mask_preview(base[0], masks[0])]}, "result": (out, mask_out)}


def _mask_preview(frame: torch.Tensor, mask: torch.Tensor) -> dict:
    """The mask over the first frame (red tint) saved in the temp folder for the node's preview."""
    from PIL import Image

    rgb = frame.float().numpy()
    tint = np.array([1.0, 0.15, 0.15], np.float32)
    m = mask.numpy()[..., None]
    shown = rgb * (1 - 0.55 * m) + tint * 0.55 * m
    folder = host.temp_dir()
    name = f"ths_mask_{os.getpid()}_{abs(hash(mask.numpy().tobytes())) % 10**10}.png"
    Image.fromarray((shown * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(os.path.join(folder, name))
    return {"filename": name, "subfolder": "", "type": "temp"}
