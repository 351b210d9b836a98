"""Ditto nodes: load, audio -> HuBERT features, audio features -> motion."""
from __future__ import annotations

from ..pipelines.app import models as model_cache
from ..pipelines.core import choices, controls
from ..pipelines.core.errors import TalkingHeadError
from . import host
from .convert import audio_to_numpy
from .registry import (
    AUDIO_FEATURES, DITTO_MODELS, DTYPE_WIDGET, LP_MODELS, MOTION, SOURCE, register)

EMOTION_CHOICES = ["from cfg"] + [f"{i} {name}" for i, name in enumerate(choices.EMOTIONS)]


@register("Load Ditto Models", "loaders")
class LoadDittoModels:
    DESCRIPTION = ("Load Ditto: the motion diffusion model (LMDM), its released cfg (emotion table, "
                   "blink template, clip ranges) and the streaming HuBERT audio encoder (ONNX; needs "
                   "onnxruntime), plus the renderer networks Ditto ships (same as LivePortrait's). "
                   "Files live in models/ditto; auto_download fetches what is missing.")
    RETURN_TYPES = (DITTO_MODELS, LP_MODELS)
    RETURN_NAMES = ("ditto", "renderer")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        layouts = ["ditto"] + [x for x in choices.LP_LAYOUTS if x != "ditto"]
        return {"required": {"renderer_layout": (layouts, {"default": "ditto", "tooltip":
                                                 "Where the renderer comes from: Ditto's own copies or "
                                                 "LivePortrait's files."}),
                             "dtype": DTYPE_WIDGET,
                             "auto_download": ("BOOLEAN", {"default": True})}}

    def load(self, renderer_layout="ditto", dtype="auto", auto_download=True):
        ctx, roots = host.context(dtype=dtype), host.model_roots()
        ditto = model_cache.load_ditto_bundle(roots, auto_download, ctx)
        renderer = model_cache.load_liveportrait(renderer_layout, roots, auto_download, ctx)
        return ditto, renderer


@register("Audio to HuBERT Features", "ditto")
class AudioToHubert:
    DESCRIPTION = ("Speech (any rate, any channels) -> Ditto's HuBERT features: resampled to 16 kHz "
                   "mono, encoded in 6480-sample chunks every 3200 samples, averaged to 25 fps. One "
                   "feature row per video frame: frames = ceil(seconds x 25).")
    RETURN_TYPES = (AUDIO_FEATURES,)
    RETURN_NAMES = ("features",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"audio": ("AUDIO",), "ditto": (DITTO_MODELS,)}}

    def encode(self, audio, ditto):
        from ..pipelines.ditto import hubert_features

        wav, rate = audio_to_numpy(audio)
        if ditto["hubert"] is None:
            raise TalkingHeadError("The HuBERT encoder is not loaded: install onnxruntime "
                                   "(`pip install onnxruntime`) and reload the Ditto models.")
        return (hubert_features(wav, rate, ditto["hubert"], host.context("hubert")),)


@register("Ditto Motion", "ditto")
class DittoMotion:
    DESCRIPTION = (
        "Audio features -> head and face motion for the source (LMDM diffusion in 80-frame "
        "windows with overlap, pose smoothing, clipping). seed makes renders repeatable. "
        "online uses the streaming algorithm (few steps, low latency). Video sources: "
        "template_frames uses only the first N frames as the template and the output ping-pongs "
        "over them; preserve_motion keeps every source frame's own head motion and blinks and "
        "drives only the lips. fade_in/out ease from and back to the still portrait.")
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "features": (AUDIO_FEATURES,),
                "source": (SOURCE,),
                "ditto": (DITTO_MODELS,),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 200, "tooltip": "DDIM steps (0 = the cfg's)."}),
                "overlap": ("INT", {"default": 0, "min": 0, "max": 79, "tooltip": "Window overlap (0 = the cfg's)."}),
                "smoothing": ("INT", {"default": 0, "min": 0, "max": 31, "tooltip": "Pose smoothing kernel (0 = the cfg's)."}),
                "emotion": (EMOTION_CHOICES, {"default": "from cfg", "tooltip":
                            "The emotion the motion expresses (from cfg: the released cfg's track)."}),
                "online": ("BOOLEAN", {"default": False, "tooltip": "The streaming algorithm (low latency)."}),
                "template_frames": ("INT", {"default": 0, "min": 0, "max": 100000,
                                            "tooltip": "Video source: use only the first N frames (0 = the cfg's / all)."}),
                "preserve_motion": ("BOOLEAN", {"default": False, "tooltip":
                                    "Video source: keep its own head motion and blinks, drive only the lips."}),
                "fade_in": ("INT", {"default": 0, "min": 0, "max": 250, "tooltip": "Frames easing in from the still."}),
                "fade_out": ("INT", {"default": 0, "min": 0, "max": 250, "tooltip": "Frames easing back to the still."}),
                "blinks": ("BOOLEAN", {"default": True, "tooltip": "Add the cfg's blinks (seeded)."}),
            },
            "optional": {
                "emotion_keyframes": ("STRING", {"default": "", "multiline": True,
                                                 "tooltip": "Per-frame emotion, e.g. {\"0\": \"Neutral\", \"100\": \"Happy\"} (blended)."}),
            },
        }

    def generate(self, features, source, ditto, seed=0, steps=0, overlap=0, smoothing=0,
                 emotion="from cfg", online=False, template_frames=0, preserve_motion=False,
                 fade_in=0, fade_out=0, blinks=True, emotion_keyframes=""):
        from ..pipelines.ditto import DittoControls, DittoSampling, emotion_schedule, source_motion

        emo = None if emotion == "from cfg" else int(emotion.split()[0])
        frames = controls.parse_keyframes(emotion_keyframes)
        if frames:
            emo = emotion_schedule(frames, len(features))
        sampling = DittoSampling(steps=steps or None, overlap=overlap or None, smoothing=smoothing or None,
                                 emotion=emo, seed=seed, online=online or None,
                                 template_n_frames=template_frames or None)
        ditto_controls = DittoControls(preserve_motion=preserve_motion, fade_in=fade_in, fade_out=fade_out,
                                       blinks=blinks)
        return (source_motion(ditto, features, source, sampling, ditto_controls, host.context("ditto motion")),)
