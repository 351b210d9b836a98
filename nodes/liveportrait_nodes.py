"""LivePortrait renderer nodes (shared by Ditto): load, extract motion, stitch, warp, decode."""
from __future__ import annotations


from ..pipelines.app import animate, models
from ..pipelines.app import sources as source_ops
from ..pipelines.core.errors import TalkingHeadError
from ..pipelines.core.types import WarpedFeatures
from . import host
from .convert import check_image
from .face_nodes import get_detector
from .registry import DTYPE_WIDGET, KEYPOINTS, LP_MODELS, MOTION, SOURCE, WARPED, register


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
        return {"required": {"layout": (models.LP_LAYOUTS, {"default": "auto"}),
                             "dtype": DTYPE_WIDGET,
                             "auto_download": ("BOOLEAN", {"default": True})}}

    def load(self, layout="auto", dtype="auto", auto_download=True):
        device = host.torch_device()
        bundle = models.load_liveportrait(layout, host.model_roots(), auto_download, device,
                                          host.torch_dtype(dtype, device))
        return (bundle,)


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
                "motion_mode": (("relative", "absolute"), {"default": "relative"}),
                "driving_option": (("expression-friendly", "pose-friendly"), {"default": "expression-friendly"}),
                "driving_multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.01}),
                "length_mismatch": (animate.LENGTH_MODES, {"default": "cycle"}),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                                  "tooltip": "The driving video's frame rate (connect Load Source's fps)."}),
                "smoothing": ("INT", {"default": 3, "min": 1, "max": 61}),
            },
        }

    def extract(self, source, driving, models, motion_mode="relative", driving_option="expression-friendly",
                driving_multiplier=1.0, length_mismatch="cycle", fps=25.0, smoothing=3):
        driving = check_image(driving, "driving")
        motion, drv = animate.driving_motion(
            driving.numpy(), fps, len(source), get_detector("mediapipe", True), models, length_mismatch,
            motion_mode == "relative", driving_option == "expression-friendly", driving_multiplier, smoothing,
            progress=host.Progress(2 * driving.shape[0], "driving motion"), check_interrupt=host.check_interrupt)
        n_out = len(motion)
        text = f"{n_out} driving frames ({source_ops.describe(drv).splitlines()[-1]})"
        return motion, text


@register("Stitch", "render")
class Stitch:
    DESCRIPTION = (
        "SOURCE + MOTION -> KEYPOINTS. Poses the source's implicit keypoints with the motion "
        "(relative or absolute for driving videos; Ditto's motion is already absolute), then "
        "stitching keeps the shoulders attached, optional eye/lip retargeting opens or closes "
        "eyes and lips to a target ratio, and the driving multiplier scales the whole motion. "
        "region picks which keypoint groups follow a driving video.")
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
                "stitching": ("BOOLEAN", {"default": True}),
                "motion_mode": (("from motion", "relative", "absolute"), {"default": "from motion"}),
                "region": (("all", "pose", "exp", "lip", "eyes"), {"default": "all"}),
                "driving_multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.01}),
                "eye_retarget": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 0.8, "step": 0.01,
                                           "tooltip": "Target eye-open ratio (-1 = off)."}),
                "lip_retarget": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 0.8, "step": 0.01,
                                           "tooltip": "Target lip-open ratio (-1 = off)."}),
            },
        }

    def stitch(self, source, motion, models, stitching=True, motion_mode="from motion", region="all",
               driving_multiplier=1.0, eye_retarget=-1.0, lip_retarget=-1.0):
        relative = None if motion_mode == "from motion" else motion_mode == "relative"
        kps = animate.keypoints_for(source, motion, models, stitching=stitching, relative=relative,
                                    region=region, driving_multiplier=driving_multiplier,
                                    eye_open=None if eye_retarget < 0 else eye_retarget,
                                    lip_open=None if lip_retarget < 0 else lip_retarget)
        return (kps,)


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
                             "batch_size": ("INT", {"default": 4, "min": 1, "max": 64})}}

    def warp(self, source, keypoints, models, batch_size=4):
        from ..pipelines.liveportrait import render

        if source.appearance is None:
            raise TalkingHeadError("The SOURCE has no appearance features: connect the renderer models "
                                   "to Face Register.")
        out = render.warp_features(models, source.appearance, keypoints.x_s, keypoints.x_d, batch_size,
                                   progress=host.Progress(len(keypoints), "warp"),
                                   check_interrupt=host.check_interrupt,
                                   source_index=keypoints.source_index if source.appearance.shape[0] > 1 else None)
        return (WarpedFeatures(out, keypoints.fps, keypoints.source_index.clone()),)


@register("Decode", "render")
class Decode:
    DESCRIPTION = "Decode warped features into 512x512 face crops (G), in batches."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crops",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"warped": (WARPED,), "models": (LP_MODELS,),
                             "batch_size": ("INT", {"default": 4, "min": 1, "max": 64})}}

    def decode(self, warped, models, batch_size=4):
        from ..pipelines.liveportrait import render

        img = render.decode(models, warped.features, batch_size, progress=host.Progress(len(warped), "decode"),
                            check_interrupt=host.check_interrupt)
        return (img,)
