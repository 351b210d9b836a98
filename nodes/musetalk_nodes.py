"""MuseTalk v1.5 nodes: load, audio -> whisper features, prepare avatar, generate, blend."""
from __future__ import annotations

import dataclasses

import torch

from ..pipelines import musetalk as mt
from ..pipelines.app import models
from ..pipelines.core import audio as audio_ops
from ..pipelines.core import choices, images
from . import host
from .convert import audio_to_numpy, check_fps, check_image
from .registry import AUDIO_FEATURES, AVATAR, DTYPE_WIDGET, MUSETALK_MODELS, SOURCE, register

PARSING_HELP = ("Regenerated region: jaw = mouth and jaw (v1.5's default), raw = the parsed face, "
                "neck = face and neck.")


@register("Load MuseTalk Models", "loaders")
class LoadMuseTalkModels:
    DESCRIPTION = ("Load MuseTalk v1.5: UNet (musetalkV15/unet.pth + musetalk.json), the sd-vae-ft-mse "
                   "VAE, whisper-tiny's encoder and the BiSeNet face parser, from models/musetalk. "
                   "auto_download fetches what is missing. No mmcv/mmpose needed. Connect a core VAE "
                   "to use a VAE ComfyUI already loaded.")
    RETURN_TYPES = (MUSETALK_MODELS,)
    RETURN_NAMES = ("musetalk",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"dtype": DTYPE_WIDGET, "auto_download": ("BOOLEAN", {"default": True})},
                "optional": {"vae": ("VAE", {"tooltip": "Use a VAE ComfyUI already loaded (sd-vae-ft-mse, "
                                                        "e.g. vae-ft-mse-840000-ema-pruned) instead of "
                                                        "models/musetalk/sd-vae."})}}

    def load(self, dtype="auto", auto_download=True, vae=None):
        bundle = models.load_musetalk_bundle(host.model_roots(), auto_download, host.context(dtype=dtype))
        if vae is not None:  # a new bundle: the cached one keeps its own VAE
            bundle = dataclasses.replace(bundle, nets=dict(bundle.nets, vae=mt.ExternalVAE(vae)))
        return (bundle,)


@register("Audio to Whisper Features", "musetalk")
class AudioToWhisper:
    DESCRIPTION = ("Speech -> MuseTalk v1.5 whisper features: one (50, 384) window per video frame "
                   "at the exact fps (29.97 does not drift), audio over 30 s in overlapping segments "
                   "without seams.")
    RETURN_TYPES = (AUDIO_FEATURES,)
    RETURN_NAMES = ("features",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"audio": ("AUDIO",), "musetalk": (MUSETALK_MODELS,),
                             "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                                               "tooltip": "The video's frame rate (connect Load Source's fps)."})}}

    def encode(self, audio, musetalk, fps=25.0):
        fps = check_fps(fps)
        wav, rate = audio_to_numpy(audio)
        wav16 = audio_ops.prepare_audio(wav, rate, 16000)
        return (mt.whisper_features(musetalk, wav16, fps, check_interrupt=host.check_interrupt),)


@register("MuseTalk Prepare Avatar", "musetalk")
class MuseTalkPrepareAvatar:
    DESCRIPTION = (
        "Everything MuseTalk needs from the source frames, computed once and cached: face boxes "
        "(from Face Register's landmarks, bbox_shift moves the mouth region: + lower, - higher), "
        "VAE latents of the masked and reference crops, face-parsing masks. Reused for every "
        "audio clip: changing the audio re-runs only Generate and Blend.")
    RETURN_TYPES = (AVATAR, "STRING")
    RETURN_NAMES = ("avatar", "info")
    FUNCTION = "prepare"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (SOURCE,),
                "musetalk": (MUSETALK_MODELS,),
                "bbox_shift": ("INT", {"default": 0, "min": -40, "max": 40, "tooltip":
                               "Move the mouth region: + lower (more chin), - higher (more mouth opening)."}),
                "extra_margin": ("INT", {"default": 10, "min": 0, "max": 60, "tooltip":
                                 "Pixels added below the chin to the face box."}),
                "parsing_mode": (list(choices.PARSING_MODES), {"default": "jaw", "tooltip": PARSING_HELP}),
                "left_cheek_width": ("INT", {"default": 90, "min": 0, "max": 256, "tooltip":
                                     "jaw mode: parsing-map pixels left of centre where the jaw keeps its full width."}),
                "right_cheek_width": ("INT", {"default": 90, "min": 0, "max": 256, "tooltip":
                                      "jaw mode: parsing-map pixels right of centre where the jaw keeps its full width."}),
                "upper_boundary_ratio": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                                   "tooltip": "Rows of the blend square above this fraction stay original."}),
                "blur_ratio": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 0.5, "step": 0.005,
                                         "tooltip": "Feathering of the mask edge, relative to the blend square."}),
                "batch_size": ("INT", {"default": 8, "min": 1, "max": 64,
                                       "tooltip": "Frames per batch through the VAE and the face parser."}),
            },
        }

    def prepare(self, source, musetalk, bbox_shift=0, extra_margin=10, parsing_mode="jaw",
                left_cheek_width=90, right_cheek_width=90, upper_boundary_ratio=0.5, blur_ratio=0.05,
                batch_size=8):
        settings = mt.AvatarSettings(parsing_mode, left_cheek_width, right_cheek_width, upper_boundary_ratio,
                                     blur_ratio, bbox_shift=bbox_shift, extra_margin=extra_margin)
        avatar = mt.avatar_from_source(musetalk, source, settings, host.context("avatar"), batch_size)
        return avatar, repr(avatar)


@register("MuseTalk Generate", "musetalk")
class MuseTalkGenerate:
    DESCRIPTION = ("One UNet step + VAE decode per frame: the lower face speaking the audio, as "
                   "256x256 crops (one per audio frame; the source frames cycle back and forth).")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("faces",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"avatar": (AVATAR,), "features": (AUDIO_FEATURES,), "musetalk": (MUSETALK_MODELS,),
                             "batch_size": ("INT", {"default": 8, "min": 1, "max": 64,
                                                    "tooltip": "Frames per batch through the UNet and VAE."})}}

    def generate(self, avatar, features, musetalk, batch_size=8):
        faces = mt.generate(musetalk, avatar, features, host.context("musetalk"), batch_size)
        return (images.to_float(faces),)


@register("MuseTalk Blend", "musetalk")
class MuseTalkBlend:
    DESCRIPTION = ("Paste the generated faces into the source frames with the face-parsing mask: "
                   "'jaw' blends mouth and jaw, 'raw' the parsed face, 'neck' adds the neck. The "
                   "settings here override the avatar's (masks rebuild from the cached parsing, no "
                   "networks run). Frames without a face pass through unchanged.")
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("frames", "mask")
    FUNCTION = "blend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"avatar": (AVATAR,), "faces": ("IMAGE",),
                         "parsing_mode": (["from avatar", *choices.PARSING_MODES],
                                          {"default": "from avatar", "tooltip": PARSING_HELP}),
                         "upper_boundary_ratio": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0,
                                                            "step": 0.01, "tooltip": "-1 = the avatar's"}),
                         "blur_ratio": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 0.5, "step": 0.005,
                                                  "tooltip": "-1 = the avatar's"})},
        }

    def blend(self, avatar, faces, parsing_mode="from avatar", upper_boundary_ratio=-1.0, blur_ratio=-1.0):
        faces = check_image(faces, "faces")
        changes = dict(parsing_mode=None if parsing_mode == "from avatar" else parsing_mode,
                       upper_boundary_ratio=None if upper_boundary_ratio < 0 else upper_boundary_ratio,
                       blur_ratio=None if blur_ratio < 0 else blur_ratio)
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes:
            avatar = mt.with_blend_settings(avatar, dataclasses.replace(avatar.settings, **changes))
        frames, masks = mt.blend(avatar, faces, return_masks=True, ctx=host.context("blend"))
        return images.to_float(torch.as_tensor(frames)), masks
