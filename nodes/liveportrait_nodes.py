"""LivePortrait renderer nodes (shared by Ditto and JoyVASA): load, extract motion,
stitch, warp, decode."""
from __future__ import annotations

from ..pipelines.app import models as model_cache
from ..pipelines.app import steps
from ..pipelines.core import choices
from ..pipelines.core.motion import DrivingSpec
from ..pipelines.core.types import WarpedFeatures
from ..pipelines.face.register import describe
from ..pipelines.liveportrait import render
from ..pipelines.liveportrait.drive import StitchOptions, keypoints_for
from . import host
from .convert import check_fps, check_image
from .registry import DTYPE_WIDGET, KEYPOINTS, LP_MODELS, MOTION, SOURCE, WARPED, register

BATCH = ("INT", {"default": 4, "min": 1, "max": 64, "tooltip":
                 "Frames per batch on a GPU: larger is faster and needs more memory. The CPU takes "
                 "one frame at a time (a stop request is then honoured within a second)."})


@register("Load LivePortrait Models", "loaders")
class LoadLivePortraitModels:
    DESCRIPTION = ("Load the renderer networks (appearance F, motion M, warp W, decoder G, "
                   "stitching/retargeting MLPs) from models/liveportrait (official .pth or Kijai's "
                   "safetensors) or models/ditto (Ditto's copies). With auto_download the official "
                   "files are downloaded there when none are found.")
    RETURN_TYPES = (LP_MODELS,)
    RETURN_NAMES = ("models",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"layout": (list(choices.LP_LAYOUTS), {"default": "auto", "tooltip":
                                        "Which file set: auto finds any complete one."}),
                             "dtype": DTYPE_WIDGET,
                             "auto_download": ("BOOLEAN", {"default": True})}}

    def load(self, layout="auto", dtype="auto", auto_download=True):
        return (model_cache.load_liveportrait(layout, host.model_roots(), auto_download,
                                              host.context(dtype=dtype)),)


@register("Extract Motion", "liveportrait")
class ExtractMotion:
    DESCRIPTION = (
        "Driving video frames -> MOTION for the source: each frame is registered, the motion "
        "extractor reads its pose and expression. Relative motion (the official default) moves "
        "the source by the driver's change from its first frame; absolute copies the driver's "
        "pose and expression. expression-friendly rescales the motion to the source's face "
        "size; pose-friendly does not. If the driving video and a source video differ in "
        "length: hold the last source frame, cycle or ping-pong the source, or cut to the shorter.")
    RETURN_TYPES = (MOTION, "STRING")
    RETURN_NAMES = ("motion", "info")
    FUNCTION = "extract"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (SOURCE,),
                "driving": ("IMAGE",),
                "models": (LP_MODELS,),
                "motion_mode": (["relative", "absolute"], {"default": "relative", "tooltip":
                                "relative: move the source by the driver's change from its first frame; "
                                "absolute: copy the driver's pose and expression."}),
                "driving_option": (["expression-friendly", "pose-friendly"], {"default": "expression-friendly",
                                   "tooltip": "expression-friendly rescales the motion to the source's face size."}),
                "driving_multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.01,
                                                 "tooltip": "Scales the whole motion."}),
                "length_mismatch": (list(choices.LENGTH_MODES), {"default": "cycle", "tooltip":
                                    "A source video of another length than the driver: hold its last "
                                    "frame, cycle or ping-pong it, or cut to the shorter."}),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                                  "tooltip": "The driving video's frame rate (connect Load Source's fps)."}),
                "smoothing": ("INT", {"default": 3, "min": 1, "max": 61,
                                      "tooltip": "Frames averaged for the driver's face crop."}),
            },
        }

    def extract(self, source, driving, models, motion_mode="relative", driving_option="expression-friendly",
                driving_multiplier=1.0, length_mismatch="cycle", fps=25.0, smoothing=3):
        driving, fps = check_image(driving, "driving"), check_fps(fps)
        spec = DrivingSpec(motion_mode == "relative", driving_option == "expression-friendly",
                           driving_multiplier)
        detector = model_cache.detector("mediapipe", host.model_roots(), True)
        motion, drv = steps.driving_motion(driving.numpy(), fps, len(source), detector, models,
                                           steps.DrivingOptions(length_mismatch, spec, smoothing),
                                           host.context("driving motion"))
        text = f"{len(motion)} driving frames ({describe(drv).splitlines()[-1]})"
        return motion, text


@register("Stitch", "render")
class Stitch:
    DESCRIPTION = (
        "SOURCE + MOTION -> KEYPOINTS. Poses the source's implicit keypoints with the motion "
        "(driving motion by LivePortrait's formula; Ditto's and edited motion is already for "
        "the source), then stitching keeps the shoulders attached, optional eye/lip retargeting "
        "opens or closes eyes and lips to a target ratio, and the driving multiplier scales the "
        "whole motion. region picks which keypoint groups follow a driving motion.")
    RETURN_TYPES = (KEYPOINTS,)
    RETURN_NAMES = ("keypoints",)
    FUNCTION = "stitch"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (SOURCE,),
                "motion": (MOTION,),
                "models": (LP_MODELS,),
                "stitching": ("BOOLEAN", {"default": True, "tooltip":
                              "Keep the shoulders and the crop's border attached (the stitching MLP)."}),
                "motion_mode": (["from motion", "relative", "absolute"], {"default": "from motion", "tooltip":
                                "Driving motion only: relative moves the source by the driver's change, "
                                "absolute copies the driver; 'from motion' keeps the producer's choice."}),
                "region": (list(choices.ANIMATION_REGIONS), {"default": "all", "tooltip":
                           "Driving motion only: which keypoint groups follow the driver "
                           "(all, pose only, expression only, lips, eyes)."}),
                "driving_multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.01,
                                                 "tooltip": "Scales the motion (1 = as produced)."}),
                "eye_retarget": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 0.8, "step": 0.01,
                                           "tooltip": "Target eye-open ratio (-1 = off)."}),
                "lip_retarget": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 0.8, "step": 0.01,
                                           "tooltip": "Target lip-open ratio (-1 = off)."}),
            },
        }

    def stitch(self, source, motion, models, stitching=True, motion_mode="from motion", region="all",
               driving_multiplier=1.0, eye_retarget=-1.0, lip_retarget=-1.0):
        options = StitchOptions(
            stitching=stitching, relative=None if motion_mode == "from motion" else motion_mode == "relative",
            region=region, multiplier=driving_multiplier,
            eye_open=None if eye_retarget < 0 else eye_retarget,
            lip_open=None if lip_retarget < 0 else lip_retarget)
        return (keypoints_for(source, motion, models, options),)


@register("Warp", "render")
class Warp:
    DESCRIPTION = ("Warp the source's appearance features to the driven keypoints (W), in "
                   "batches on the GPU when present. The result stays on the CPU in half "
                   "precision, so long videos fit in memory.")
    RETURN_TYPES = (WARPED,)
    RETURN_NAMES = ("warped",)
    FUNCTION = "warp"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": (SOURCE,), "keypoints": (KEYPOINTS,), "models": (LP_MODELS,),
                             "batch_size": BATCH}}

    def warp(self, source, keypoints, models, batch_size=4):
        from ..pipelines.core.errors import TalkingHeadError

        if source.appearance is None:
            raise TalkingHeadError("The SOURCE has no appearance features: connect the renderer models "
                                   "to Face Register.")
        rows = keypoints.source_index if source.appearance.shape[0] > 1 else None
        out = render.warp_features(models, source.appearance, keypoints.x_s, keypoints.x_d,
                                   host.context("warp"), batch_size, rows)
        return (WarpedFeatures(out, keypoints.fps, keypoints.source_index.clone()),)


@register("Decode", "render")
class Decode:
    DESCRIPTION = "Decode warped features into 512x512 face crops (G), in batches."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crops",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"warped": (WARPED,), "models": (LP_MODELS,), "batch_size": BATCH}}

    def decode(self, warped, models, batch_size=4):
        return (render.decode(models, warped.features, host.context("decode"), batch_size),)
