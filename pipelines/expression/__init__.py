"""Expression editing and driver-free animation (ComfyUI-AdvancedLivePortrait parity).

Pure PyTorch on plain LivePortrait parameters (:class:`FaceParams`: kp, exp (T,21,3),
pitch/yaw/roll (T,) degrees, scale (T,1), t (T,3)); no ComfyUI, no networks except the
stitching MLP you pass in. Two modes: "reference" reproduces AdvancedLivePortrait to
float32 rounding, "default" fixes its defects (modes.py lists every difference).

Edit a still image::

    src = FaceParams.from_mapping(motion_extractor_output)
    res = edit(src, Sliders(smile=0.8, blink=-5), stitching=stitching_mlp)
    res.expression      # the ExpressionSet made (EXP_DATA), e.g. for a script chain
    res.params          # edited FaceParams; res.x_s / res.x_d_stitched for the warper

Mix in a second face, add a saved expression::

    res = edit(src, Sliders(), sample=other, mix=Mix(src_ratio=0.5, sample_ratio=0.7,
               sample_parts="OnlyMouth"), add=load_preset(list_presets()["smile"]).expression)

Animate without a driving video (a script over a chain of sets, or JSON keyframes)::

    sets = [edit(src, Sliders(wink=25)).expression, edit(src, Sliders(aaa=40)).expression]
    anim = animate_script(src, "1 = 10 : 5\\n2 = 8 : 0 : ease-in-out\\n0 = 10 : 0", sets,
                          stitching=stitching_mlp)
    keys = parse_keyframes('[{"frame": 0, "ease": "ease-in-out"}, '
                           '{"frame": 20, "preset": "smile"}]')
    anim = animate_script(src, keys, stitching=stitching_mlp)     # 21 frames
    anim = animate(src, keys.expand(40), stitching=stitching_mlp)  # any length

Move every frame of any motion (driving video, Ditto, JoyVASA) by a set or a track::

    moved = apply_offsets(motion_params, load_preset(path).expression)
"""
from .animate import (AnimateSettings, AnimationResult, animate, animate_script, apply_offsets,
                      frame_count)
from .editor import EditResult, build_expression, edit
from .errors import (ExpressionError, ExpressionShapeError, KeyframeError, PresetError,
                     ReferenceCommandError, ReferenceZeroChangeError, ScriptError)
from .expset import ExpressionSet, ExpressionTrack, expdata
from .keyframes import Keyframes, parse_keyframes
from .keypoint_forms import rotation_matrix, source_keypoints, stitch_keypoints
from .mixing import MIX_RANGES, SAMPLE_PARTS, Mix
from .modes import MAX_FRAMES, MODES
from .params import FaceParams
from .presets import (SHIPPED_PRESETS, Preset, list_presets, load_preset, preset_file,
                      preset_to_dict, save_preset)
from .ramps import EASINGS, ease
from .script import Script, parse_script
from .sliders import SLIDER_RANGES, Sliders

__all__ = [
    "AnimateSettings", "AnimationResult", "animate", "animate_script", "apply_offsets",
    "frame_count", "EditResult", "build_expression", "edit", "ExpressionError",
    "ExpressionShapeError", "KeyframeError", "PresetError", "ReferenceCommandError",
    "ReferenceZeroChangeError", "ScriptError", "ExpressionSet", "ExpressionTrack", "expdata",
    "Keyframes", "parse_keyframes", "rotation_matrix", "source_keypoints", "stitch_keypoints",
    "MIX_RANGES", "SAMPLE_PARTS", "Mix", "MAX_FRAMES", "MODES", "FaceParams", "SHIPPED_PRESETS",
    "Preset", "list_presets", "load_preset", "preset_file", "preset_to_dict", "save_preset", "EASINGS", "ease",
    "Script", "parse_script", "SLIDER_RANGES", "Sliders",
]
