"""JoyVASA nodes: load, audio -> JoyVASA features, features -> MOTION (rendered by the
LivePortrait nodes: Stitch, Warp, Decode, Blend)."""
from __future__ import annotations

from ..pipelines.app import models as model_cache
from ..pipelines.core import choices
from . import host
from .convert import audio_to_numpy, check_fps
from .registry import AUDIO_FEATURES, DTYPE_WIDGET, JOYVASA_MODELS, MOTION, SOURCE, register


@register("Load JoyVASA Models", "loaders")
class LoadJoyVASAModels:
    DESCRIPTION = ("Load JoyVASA (audio -> LivePortrait motion): the motion generator with its "
                   "chinese-hubert-base audio encoder, and the motion template. Files live in "
                   "models/joyvasa; auto_download fetches them from jdh-algo/JoyVASA (414 MB). "
                   "Render its motion with Load LivePortrait Models' renderer.")
    RETURN_TYPES = (JOYVASA_MODELS,)
    RETURN_NAMES = ("joyvasa",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "dtype": DTYPE_WIDGET,
            "auto_download": ("BOOLEAN", {"default": True, "tooltip":
                              "Download missing files into models/joyvasa (with progress)."}),
            "save_safetensors": ("BOOLEAN", {"default": False, "tooltip":
                                 "Write a .safetensors copy next to the pickled .pt once; later "
                                 "loads read it instead (faster, no pickle)."}),
        }}

    def load(self, dtype="auto", auto_download=True, save_safetensors=False):
        ctx = host.context(dtype=dtype)
        return (model_cache.load_joyvasa_bundle(host.model_roots(), auto_download, ctx,
                                                convert=save_safetensors),)


@register("Audio to JoyVASA Features", "joyvasa")
class AudioToJoyVASA:
    DESCRIPTION = ("Speech (any rate, any channels) -> JoyVASA's audio features: resampled to 16 kHz "
                   "mono, padded as the reference does, encoded by its HuBERT in 100-frame windows "
                   "at 25 fps. JoyVASA Motion turns them into ceil(seconds x fps) frames.")
    RETURN_TYPES = (AUDIO_FEATURES,)
    RETURN_NAMES = ("features",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"audio": ("AUDIO",), "joyvasa": (JOYVASA_MODELS,)}}

    def encode(self, audio, joyvasa):
        from ..pipelines.joyvasa import audio_features

        wav, rate = audio_to_numpy(audio)
        return (audio_features(joyvasa, wav, rate, host.context("joyvasa audio")),)


@register("JoyVASA Motion", "joyvasa")
class JoyVASAMotion:
    DESCRIPTION = (
        "JoyVASA audio features -> head and face motion (diffusion transformer, 100-frame windows "
        "each conditioned on the previous 25 motions, guidance on the audio). seed makes renders "
        "repeatable. smoothing calms the head (the reference's 0.99 nearly stills it), "
        "expression_smoothing the lips and eyes; region picks what follows the audio. Connect "
        "the SOURCE for a video portrait so its frames walk under the motion.")
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "features": (AUDIO_FEATURES,),
                "joyvasa": (JOYVASA_MODELS,),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip":
                         "Seeds every random draw: the same seed gives the same motion."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip":
                          "Denoising steps (0 = the checkpoint's 50); fewer is faster and coarser."}),
                "cfg_scale": ("FLOAT", {"default": 2.8, "min": 1.0, "max": 10.0, "step": 0.1, "tooltip":
                              "Guidance on the audio: higher follows the speech more strongly (1 = off, "
                              "half the compute)."}),
                "smoothing": ("FLOAT", {"default": 0.99, "min": 0.0, "max": 0.999, "step": 0.01, "tooltip":
                              "Head-pose smoothing (0 = off; the reference's 0.99 keeps the head calm)."}),
                "expression_smoothing": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 0.99, "step": 0.05,
                                         "tooltip": "Expression smoothing without delay; 0.3-0.6 calms "
                                                    "jittery lips and eyes."}),
                "region": (list(choices.JOYVASA_REGIONS), {"default": "all", "tooltip":
                           "What follows the audio; the rest stays the portrait's (lips: lip-sync only)."}),
                "multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip":
                               "Scales every generated change (0.5 = half the motion)."}),
                "blinks": ("BOOLEAN", {"default": True, "tooltip":
                           "Add seeded eye blinks (JoyVASA itself makes none)."}),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001, "tooltip":
                        "Output frame rate: ceil(seconds x fps) frames, no drift against the audio."}),
                "positional_encoding": (list(choices.JOYVASA_PE_MODES), {"default": "prefix", "tooltip":
                                        "prefix: what the released weights were trained with; fixed: "
                                        "upstream's later code (not what the weights saw)."}),
            },
            "optional": {
                "source": (SOURCE, {"tooltip": "A video portrait: its frames follow the motion by "
                                               "source_frames."}),
                "source_frames": (list(choices.LENGTH_MODES), {"default": "ping-pong", "tooltip":
                                  "A video source: hold its last frame, cycle or ping-pong it, or cut "
                                  "to the shorter of video and speech."}),
            },
        }

    def generate(self, features, joyvasa, seed=0, steps=0, cfg_scale=2.8, smoothing=0.99,
                 expression_smoothing=0.0, region="all", multiplier=1.0, blinks=True, fps=25.0,
                 positional_encoding="prefix", source=None, source_frames="ping-pong"):
        from ..pipelines.joyvasa import JoyVASASettings, motion_from_features

        settings = JoyVASASettings(cfg_scale=cfg_scale, seed=seed, pe_mode=positional_encoding,
                                   smoothing=smoothing, expression_smoothing=expression_smoothing,
                                   region=region, multiplier=multiplier, blinks=blinks,
                                   fps=check_fps(fps), steps=steps)
        motion = motion_from_features(joyvasa, features, settings, host.context("joyvasa motion"))
        motion = motion.to_motion()
        return (motion if source is None else motion.on_source(len(source), source_frames),)
