"""Expression nodes (AdvancedLivePortrait parity, on any MOTION): Expression Edit, Save and
Load Expression Preset, Animate Expressions. The maths is pipelines/expression; these
nodes only unpack widgets, call it and pack the results."""
from __future__ import annotations

import hashlib
import os
import weakref
from collections import OrderedDict
from typing import Optional, Sequence

import torch

from ..pipelines.app import models as model_cache
from ..pipelines.core import choices, images
from ..pipelines.core.errors import ShapeError, TalkingHeadError
from ..pipelines.core.motion import Motion
from ..pipelines.core.types import ModelBundle, Source
from ..pipelines.expression import (
    MIX_RANGES, SHIPPED_PRESETS, SLIDER_RANGES, AnimateSettings, ExpressionError, ExpressionSet,
    FaceParams, Mix, ReferenceZeroChangeError, ScriptError, Sliders, animate_script,
    apply_offsets, build_expression, list_presets, load_preset, parse_keyframes, parse_script,
    preset_file, save_preset)
from ..pipelines.expression import edit as edit_face
from ..pipelines.expression.motion_bridge import (
    absolute_motion, motion_params, render_params, source_params, still_motion)
from ..pipelines.face import TrackSettings, crop_inputs_256
from ..pipelines.face.register import register_source
from ..pipelines.liveportrait import render
from ..pipelines.liveportrait.drive import StitchOptions, keypoints_for
from . import host
from .convert import check_fps, check_image
from .registry import EXPRESSION, LP_MODELS, MOTION, SOURCE, register

SLIDER_HELP = {
    "rotate_pitch": "Nod: degrees added to the head's pitch.",
    "rotate_yaw": "Turn: degrees of head turn (the sign is flipped as in AdvancedLivePortrait).",
    "rotate_roll": "Tilt: degrees added to the head's roll.",
    "blink": "Negative closes the eyes, positive opens them wider.",
    "eyebrow": "Positive raises the eyebrows, negative lowers and knits them.",
    "wink": "Closes one eye (also rolls and turns the head a little, as the reference does).",
    "pupil_x": "Look sideways.",
    "pupil_y": "Look up or down (also opens or half-closes the lids).",
    "aaa": "Open the mouth as in 'aaa' (also tilts the head down a little).",
    "eee": "Stretch the lips as in 'eee'.",
    "woo": "Round the lips as in 'woo'.",
    "smile": "Smile (negative: the corners of the mouth go down).",
}
SLIDERS = {name: ("FLOAT", {"default": d, "min": lo, "max": hi, "step": step,
                            "tooltip": SLIDER_HELP[name]})
           for name, (lo, hi, step, d) in SLIDER_RANGES.items()}
MODE_WIDGET = (list(choices.EXPRESSION_MODES), {"default": "default", "tooltip":
               "default: LivePortrait's keypoint form (an all-zero edit is the source itself), "
               "CHANGE = 0 is a jump, blank lines and # comments allowed. reference: "
               "AdvancedLivePortrait's maths exactly (its keypoint forms, linear ramps, its "
               "errors)."})
_lo, _hi, _step, _d = MIX_RANGES["src_ratio"]
SRC_RATIO = ("FLOAT", {"default": _d, "min": _lo, "max": _hi, "step": _step, "tooltip":
             "How much of the source's own expression stays (1 = all, 0 = a neutral face). "
             "Used when editing the still; with a MOTION connected it is not used."})
_lo, _hi, _step, _d = MIX_RANGES["sample_ratio"]
SAMPLE_RATIO = ("FLOAT", {"default": _d, "min": _lo, "max": _hi, "step": _step, "tooltip":
                "How much of the sample face's parts is added."})
SAMPLE_PARTS = (list(choices.SAMPLE_PARTS), {"default": "OnlyExpression", "tooltip":
                "What the sample face lends: its whole expression, its head rotation, only "
                "its mouth or eyes, or expression and rotation (All)."})
EASING = (list(choices.EASINGS), {"default": "linear", "tooltip":
          "The curve of every script transition without its own (linear is the reference's; "
          "ease-in-out starts and ends slowly; hold cuts at the end). JSON keyframes name "
          "theirs with \"ease\". Reference mode is always linear."})
CHAIN = tuple(f"expression_{k}" for k in range(1, 6))
DEFAULT_SCRIPT = "1 = 12 : 12\n0 = 12 : 4"
SAMPLE_CACHE_SIZE = 4


def preview_file(crop: torch.Tensor, stem: str) -> dict:
    """One rendered crop saved as a PNG in the temp folder, for the node's preview."""
    from PIL import Image

    pixels = images.to_uint8(crop).numpy()
    name = f"ths_{stem}_{os.getpid()}_{hashlib.sha1(pixels.tobytes()).hexdigest()[:12]}.png"
    Image.fromarray(pixels).save(os.path.join(host.temp_dir(), name))
    return {"filename": name, "subfolder": "", "type": "temp"}


def _need_motion_data(source: Source) -> None:
    if source.motion is None:
        raise ShapeError("The SOURCE has no motion-extractor data: connect the renderer models "
                         "(LP_MODELS) to Face Register's 'models' input.")


_SAMPLES: "OrderedDict[str, tuple]" = OrderedDict()


def _sample_params(image: torch.Tensor, models: ModelBundle) -> FaceParams:
    """The sample face's motion (its first frame). Kept for a few samples, because the node
    re-runs on every slider change and the sample itself rarely changes. The models are
    held weakly: a cached sample must not keep an unloaded model bundle in memory."""
    frame = images.to_uint8(check_image(image, "sample_image")[:1].contiguous())
    key = hashlib.sha1(frame.numpy().tobytes()).hexdigest()
    hit = _SAMPLES.get(key)
    if hit is not None and hit[0]() is models:
        _SAMPLES.move_to_end(key)
        return hit[1]
    ctx = host.context("sample face")
    detector = model_cache.detector("mediapipe", host.model_roots(), True)
    try:
        face = register_source(frame.numpy(), 25.0, detector, TrackSettings(), ctx)
    except TalkingHeadError as exc:  # no face found and friends: say which input
        raise type(exc)(f"sample_image: {exc}") from None
    params = source_params(render.extract_motion(models, crop_inputs_256(face.crops), ctx))
    _SAMPLES[key] = (weakref.ref(models), params)
    while len(_SAMPLES) > SAMPLE_CACHE_SIZE:
        _SAMPLES.popitem(last=False)
    return params


def _preview(source: Source, motion: Motion, models: ModelBundle) -> torch.Tensor:
    """The first frame of ``motion`` rendered on its source crop (1,512,512,3): one frame
    through the same Stitch/Warp/Decode the full render uses."""
    first = motion.select(slice(0, 1))
    keypoints = keypoints_for(source, first, models, StitchOptions())
    return render.render(models, source, keypoints, slice(0, 1), host.context("preview"), 1)


def preset_library() -> dict:
    """{name: path} of the user's presets and the shipped ones (a user's preset of the same
    name wins: it is their own version)."""
    return list_presets([host.presets_dir(), SHIPPED_PRESETS])


def preset_names() -> list:
    return list(preset_library()) or ["smile"]


@register("Expression Edit", "expression")
class ExpressionEdit:
    DESCRIPTION = (
        "AdvancedLivePortrait's Expression Editor on a SOURCE or on any MOTION. Without a "
        "MOTION: the source (every frame of a video source) with the edited expression, as a "
        "MOTION for Stitch -> Warp -> Decode. With a MOTION (a driving video's, Ditto's, "
        "JoyVASA's, another edit's): the same offsets on every frame of what that motion shows. "
        "An absolute motion (Ditto, edits) gets them directly; a driving motion is first "
        "composed with the SOURCE as Stitch would compose it (its own relative/absolute and "
        "formula choices), because an offset added to a driver's every frame would cancel "
        "out against its first frame; the result is an absolute motion, so Stitch's "
        "motion_mode and region no longer apply to it. Outputs the MOTION, the EXPRESSION "
        "made (save it as a preset, chain it into Animate Expressions) and a preview: the "
        "output's first frame rendered on the source crop, one frame only so that moving a "
        "slider stays quick (shown in the node). A sample image lends "
        "its expression, rotation, mouth or eyes; add_expression adds a saved preset.")
    RETURN_TYPES = (MOTION, EXPRESSION, "IMAGE", "STRING")
    RETURN_NAMES = ("motion", "expression", "preview", "info")
    FUNCTION = "edit"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"source": (SOURCE,), "models": (LP_MODELS,), **SLIDERS,
                         "src_ratio": SRC_RATIO, "mode": MODE_WIDGET},
            "optional": {
                "sample_image": ("IMAGE", {"tooltip": "A second face whose parts are mixed in."}),
                "sample_ratio": SAMPLE_RATIO,
                "sample_parts": SAMPLE_PARTS,
                "add_expression": (EXPRESSION, {"tooltip": "An expression (e.g. a loaded preset) "
                                                           "added on top of the sliders."}),
                "motion": (MOTION, {"tooltip": "Edit every frame of this motion instead of the "
                                               "still source."}),
            },
        }

    def edit(self, source, models, src_ratio=1.0, mode="default", sample_image=None,
             sample_ratio=1.0, sample_parts="OnlyExpression", add_expression=None, motion=None,
             **sliders):
        _need_motion_data(source)
        values = Sliders.from_mapping(sliders)
        sample = None if sample_image is None else _sample_params(sample_image, models)
        mix = Mix(src_ratio, sample_ratio, sample_parts)
        if motion is None:
            result = edit_face(source_params(source.motion), values, sample, mix,
                               add_expression, mode)
            expression = result.expression
            out = still_motion(render_params(result, mode), torch.arange(len(source)), source.fps)
            info = f"edited the source: {len(out)} frame(s), {mode} mode"
        else:
            expression = build_expression(values, sample, mix, add_expression)
            out = absolute_motion(apply_offsets(motion_params(source, motion), expression), motion)
            how = ("composed with the source first" if motion.kind == "driving"
                   else "offsets added")
            info = f"edited {len(out)} frames of {motion.origin} motion ({how})"
            if src_ratio != 1.0:
                info += "; src_ratio acts on the still source only and was not used"
        crop = _preview(source, out, models)
        info += f"\n{expression!r}"
        return {"ui": {"images": [preview_file(crop[0], "expression")]},
                "result": (out, expression, crop, info)}


@register("Save Expression Preset", "expression")
class SaveExpressionPreset:
    DESCRIPTION = (
        "Save an EXPRESSION as a small JSON preset in models/talking_head_presets (a folder "
        "you can open, back up and share; the file is plain numbers, nothing in it is ever "
        "run). Load Expression Preset lists it after a refresh. The file is written whole or "
        "not at all.")
    RETURN_TYPES = (EXPRESSION, "STRING")
    RETURN_NAMES = ("expression", "path")
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "expression": (EXPRESSION,),
            "name": ("STRING", {"default": "my expression", "tooltip":
                     "The preset's name: letters, digits, spaces, '-', '_' or '.' (no folders)."}),
            "description": ("STRING", {"default": "", "multiline": True, "tooltip":
                            "What it is or how it was made (kept in the file)."}),
            "overwrite": ("BOOLEAN", {"default": True, "tooltip":
                          "Replace a preset of the same name (off: stop with a message instead)."}),
        }}

    def save(self, expression, name, description="", overwrite=True):
        if not isinstance(expression, ExpressionSet):
            raise ShapeError("'expression' must be an EXPRESSION (from Expression Edit or Load "
                             "Expression Preset).")
        path = preset_file(host.presets_dir(), name)
        if os.path.exists(path) and not overwrite:
            raise ExpressionError(f"a preset named {os.path.basename(path)[:-5]!r} exists; turn "
                                  "on overwrite or choose another name")
        save_preset(path, expression, os.path.basename(path)[:-5], description)
        return expression, path


@register("Load Expression Preset", "expression")
class LoadExpressionPreset:
    DESCRIPTION = (
        "Load an expression preset: the shipped ones (smile, surprise, wink, blink, talk-a/e/o) "
        "and yours from models/talking_head_presets (yours win on a name clash). amount scales "
        "it like AdvancedLivePortrait's LoadExpData ratio. A file with unknown keys, wrong "
        "shapes or non-numbers is refused with the reason.")
    RETURN_TYPES = (EXPRESSION, "STRING")
    RETURN_NAMES = ("expression", "description")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        names = preset_names()
        return {"required": {
            "preset": (names, {"default": "smile" if "smile" in names else names[0], "tooltip":
                       "Shipped presets and yours (models/talking_head_presets)."}),
            "amount": ("FLOAT", {"default": 1.0, "min": -1.0, "max": 2.0, "step": 0.01, "tooltip":
                       "Scales the whole expression (1 = as saved, 0.5 = half, -1 = the opposite)."}),
        }}

    @classmethod
    def IS_CHANGED(cls, preset, **_):
        path = preset_library().get(preset)
        return f"{path}:{os.path.getmtime(path)}" if path and os.path.isfile(path) else preset

    def load(self, preset, amount=1.0):
        library = preset_library()
        if preset not in library:
            raise ExpressionError(f"no expression preset named {preset!r}; available: "
                                  f"{', '.join(library) or 'none'}")
        loaded = load_preset(library[preset])
        return loaded.expression * float(amount), loaded.description


def _chain(sets: Sequence[Optional[ExpressionSet]]) -> list:
    """The connected expressions as the script's chain (INDEX k = expression_k)."""
    last = max((k for k, s in enumerate(sets) if s is not None), default=-1)
    gaps = [CHAIN[k] for k in range(last) if sets[k] is None]
    if gaps:
        raise ExpressionError(f"{CHAIN[last]} is connected but {', '.join(gaps)} is not: connect "
                              "the expressions in order from expression_1 (INDEX k of the "
                              "script is expression_k)")
    return list(sets[:last + 1])


def _zero_change_line(text: str, sets: list) -> str:
    """Which line has CHANGE = 0 (the reference's error does not say)."""
    try:
        for command in parse_script(text, sets, "default").commands:
            if command.change == 0:
                return f"line {command.line}: "
    except ScriptError:
        pass
    return ""


def _plan(script: str, sets: list, mode: str, easing: str):
    """A parsed command script, or JSON keyframes when the text is a JSON list."""
    if script.lstrip().startswith("["):
        return parse_keyframes(script, sets, preset_library())
    try:
        return parse_script(script, sets, mode, easing)
    except ReferenceZeroChangeError:
        raise ScriptError(f"{_zero_change_line(script, sets)}CHANGE = 0 divides by zero in "
                          "reference mode (as in AdvancedLivePortrait); use 1 or more frames, "
                          "or the default mode, where CHANGE = 0 is a jump") from None


@register("Animate Expressions", "expression")
class AnimateExpressions:
    DESCRIPTION = (
        "Animate a portrait without a driving video, as AdvancedLivePortrait's command "
        "scripts do: one line per move, 'INDEX = CHANGE : KEEP': go to expression INDEX "
        "(1 = expression_1, ..., -1 = the last connected, 0 = the source's own face) over "
        "CHANGE frames, then hold it KEEP frames; after the script the last state holds. "
        "Default mode also takes '# comments', an easing per line ('1 = 10 : 5 : "
        "ease-in-out') and CHANGE = 0 as a jump. Or write JSON keyframes, e.g. "
        "[{\"frame\": 0}, {\"frame\": 20, \"preset\": \"smile\"}, {\"frame\": 40, \"set\": 1, "
        "\"sliders\": {\"blink\": -8}, \"ease\": \"ease-in-out\"}, {\"frame\": 60}]. "
        "Without a MOTION the output lasts the script (at least the source's frames); with "
        "one, the animation is added to its every frame (as in Expression Edit) and keeps "
        "its length and fps. Errors name the script line.")
    RETURN_TYPES = (MOTION, "STRING")
    RETURN_NAMES = ("motion", "info")
    FUNCTION = "animate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (SOURCE,),
                "script": ("STRING", {"default": DEFAULT_SCRIPT, "multiline": True, "tooltip":
                           "'INDEX = CHANGE : KEEP' per line, or a JSON keyframe list."}),
                "easing": EASING,
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                                  "tooltip": "Frames per second of the animation (a connected "
                                             "MOTION keeps its own)."}),
                "mode": MODE_WIDGET,
            },
            "optional": {
                **{name: (EXPRESSION, {"tooltip": f"Script INDEX {k}."})
                   for k, name in enumerate(CHAIN, 1)},
                "motion": (MOTION, {"tooltip": "Add the animation to this motion's frames."}),
            },
        }

    def animate(self, source, script, easing="linear", fps=25.0, mode="default",
                expression_1=None, expression_2=None, expression_3=None, expression_4=None,
                expression_5=None, motion=None):
        _need_motion_data(source)
        sets = _chain([expression_1, expression_2, expression_3, expression_4, expression_5])
        plan = _plan(script if isinstance(script, str) else "", sets, mode, easing)
        if motion is None:
            result = animate_script(source_params(source.motion), plan,
                                    settings=AnimateSettings(mode=mode), easing=easing)
            out = still_motion(render_params(result, mode), result.source_index, check_fps(fps))
            notes = list(result.notes)
        else:
            track = plan.expand(len(motion))
            out = absolute_motion(apply_offsets(motion_params(source, motion), track), motion)
            notes = []
        if mode == "reference" and easing != "linear":
            notes.append("reference mode ramps are linear: the easing was not used")
        info = (f"{len(out)} frames at {out.fps:g} fps; the script takes {plan.length} frames "
                f"over {len(sets)} connected expression(s)")
        return out, "\n".join([info, *notes])
