"""Paste-back and blend modes: put the rendered face crops back into the frames.

Blend modes (``BlendSpec.mode`` -> the render's weight inside the region):

* ``replace`` (1.0): the render fully replaces the region. With region ``crop`` this is
  the original LivePortrait / Ditto paste-back (the whole crop square, official
  feathered edge).
* ``strong`` (0.9): 90 % render, 10 % original: still hides the original's smile or
  teeth, with a trace of the original's texture and lighting.
* ``blend`` (0.5): half render, half original inside the region, smooth edges.
* ``weak`` (0.25): a subtle touch of the render over the original.
* ``custom``: your own ``alpha`` between 0 (original only) and 1 (render only).

Regions (where the render is used; the weight falls to 0 at the edge):

* ``crop``: the crop square with the official feathered mask (original behaviour).
  ``feather`` 0/None keeps the official 16 px (LivePortrait) or 26 px (Ditto) ramp at crop
  resolution; ``feather`` > 0 adds that many frame pixels of extra inward ramp.
* ``face``: the convex hull of the face landmarks (the face oval for MediaPipe 478,
  all points for other schemes), so no square shows on plain backgrounds.
* ``lower_face``: mouth and jaw only, the face hull below the nose line (through the nose
  tip, perpendicular to the eyes-to-mouth axis): for lip-sync over a moving source
  video, where the eyes and brows should stay the source's own.
  ``feather`` (frame px) is the width of the linear ramp inside the edge; None = 16 crop
  pixels converted to frame pixels (the official template's softness).

Colour matching (``color_match`` "rgb" or "lab", default "off") shifts and scales each
channel of the render to the original's mean and std inside the mask.

Defaults (replace + crop, no feather, no colour matching) reproduce the original
paste-back. ``reference`` holds the bit-exact cv2 paths used by the golden tests.
"""
from .blend import AUTO_FEATHER_CROP_PX, build_masks, frame_index, paste_torch
from .color import COLOR_MATCH, match_color
from .pasteback import ChunkMasks, blend_masks, paste_back
from .reference import (CROP_TEMPLATES, ditto_mask_template, ditto_put_back,
                        ditto_warped_mask, lp_mask_template, lp_paste_back,
                        lp_prepare_paste_back, lp_render_to_u8, warp_to_frame)
from .regions import LAYOUTS, LandmarkLayout, resolve_layout
from ..core.choices import MODE_HELP, REGION_HELP
from .spec import MODES, REGIONS, BlendSpec

__all__ = [
    "BlendSpec", "MODES", "REGIONS", "MODE_HELP", "REGION_HELP", "COLOR_MATCH", "CROP_TEMPLATES",
    "AUTO_FEATHER_CROP_PX", "ChunkMasks", "blend_masks", "paste_back", "build_masks", "paste_torch",
    "frame_index", "match_color",
    "lp_mask_template", "lp_prepare_paste_back", "lp_paste_back", "lp_render_to_u8",
    "ditto_mask_template", "ditto_warped_mask", "ditto_put_back", "warp_to_frame",
    "LandmarkLayout", "LAYOUTS", "resolve_layout",
]
