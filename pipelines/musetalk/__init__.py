"""MuseTalk v1.5: single-step latent inpainting of the lower face from whisper features.

Typical use (each line maps onto one ComfyUI node)::

    bundle = load_musetalk({"unet": ..., "vae": ..., "whisper": ..., "parsing": ...}, device, dtype)
    feats = whisper_features(bundle, wave16k, fps)                       # AudioFeatures
    avatar = avatar_from_source(bundle, source, AvatarSettings(), ctx)   # cached per source
    faces = generate(bundle, avatar, feats, ctx)                         # (T,256,256,3) uint8
    frames, masks = blend(avatar, faces, return_masks=True)              # (T,H,W,3) uint8
    # or, streaming for long clips: video.stream_video(bundle, avatar, feats, ctx)

Files: audio.py (log-mel, encoder windows, per-frame features), crop.py (landmark box,
256 crop), latents.py (VAE/UNet glue), bisenet.py (face parser), blending.py (masks and
paste-back), avatar.py (cache + generate + blend), video.py (the render loop), models.py
(configs, loading); resampling to 16 kHz is the shared core/audio.py.
Precision: UNet and VAE weights are cast to the run's dtype (fp16/bf16 on a GPU, as the
reference does; it halves their memory), and so are whisper's; the parser stays fp32 (its
argmax feeds exact mask thresholds).
"""
from .audio import frame_count, positional_encoding, whisper_features
from .avatar import (Avatar, AvatarSettings, avatar_from_source, blend, blend_masks, frame_schedule,
                     generate, placed_frames, prepare_avatar, with_blend_settings)
from .crop import bbox_shift_range, crop_face, face_box, face_boxes
from .latents import ExternalVAE
from .models import load_musetalk

__all__ = [
    "Avatar", "AvatarSettings", "ExternalVAE", "avatar_from_source", "bbox_shift_range", "blend",
    "blend_masks", "crop_face", "face_box", "face_boxes", "frame_count", "frame_schedule", "generate",
    "load_musetalk", "placed_frames", "positional_encoding", "prepare_avatar", "whisper_features",
    "with_blend_settings",
]
