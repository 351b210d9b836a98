"""MuseTalk v1.5: single-step latent inpainting of the lower face from whisper features.

Typical use (each line maps onto one ComfyUI node)::

    bundle = load_musetalk({"unet": ..., "vae": ..., "whisper": ..., "parsing": ...}, device, dtype)
    feats = whisper_features(bundle, resample(wave, sr), fps)          # AudioFeatures
    boxes, found = face_boxes(landmarks68, (H, W), bbox_shift=0, extra_margin=10)
    avatar = prepare_avatar(bundle, frames, boxes, found, parsing_mode="jaw")
    faces = generate(bundle, avatar, feats, batch_size=8)              # (T,256,256,3) uint8
    frames, masks = blend(avatar, faces, return_masks=True)            # (T,H,W,3) uint8

Files: audio.py (log-mel, encoder windows, per-frame features), crop.py (landmark box,
256 crop), latents.py (VAE/UNet glue), bisenet.py (face parser), blending.py (masks and
paste-back), avatar.py (cache + generate + blend), models.py (configs, loading);
resampling to 16 kHz is the shared pipelines/audio.py.
"""
from .audio import frame_count, positional_encoding, whisper_features
from .avatar import (
    Avatar, avatar_from_source, blend, blend_masks, frame_schedule, generate, placed_frames,
    prepare_avatar, with_blend_settings)
from .crop import bbox_shift_range, crop_face, face_box, face_boxes
from .latents import ExternalVAE
from .models import TINY_CONFIGS, load_musetalk
from ..core.audio import resample

__all__ = [
    "Avatar", "ExternalVAE", "avatar_from_source", "TINY_CONFIGS", "bbox_shift_range", "blend", "blend_masks", "crop_face",
    "face_box", "face_boxes", "frame_count", "frame_schedule", "generate", "load_musetalk",
    "placed_frames", "positional_encoding", "prepare_avatar", "resample", "whisper_features",
    "with_blend_settings",
]
