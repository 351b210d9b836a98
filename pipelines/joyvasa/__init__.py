"""JoyVASA (jdh-algo/JoyVASA, MIT): audio -> LivePortrait motion with a diffusion transformer.

Typical use::

    bundle = load_joyvasa({"motion_generator": ".../motion_generator_hubert_chinese.pt",
                           "template": ".../motion_template.pkl"}, device)
    motion = generate_motion(bundle, waveform, sample_rate,
                             JoyVASASettings(seed=0, fps=25, region="all"), ctx)
    motion.exp, motion.scale, motion.t, motion.pitch, motion.yaw, motion.roll   # per frame

``motion`` is relative-driving motion: frame 0 (a silent frame) is the reference, so
render it with LivePortrait's relative driving formula (or ``reference_keypoints`` for
JoyVASA's own variant). ``convert_to_safetensors(pt)`` turns the pickled checkpoint into
a .safetensors + .json pair that later loads prefer.

Modules: config (sizes), audio_encoder (HuBERT at 2x rate), denoiser / schedule / model
(the network), sampler (ancestral DDPM + guidance), generate (windows over long audio,
output frame rate), template (de-normalisation), controls (smoothing, region,
multiplier, blinks), settings, motion (the result), driving (the reference's keypoints),
loader (files), pipeline (the whole run).
"""
from .config import CHINESE_HUBERT_BASE, OFFICIAL, TINY, JoyVASAConfig
from .driving import ReferenceDrive, reference_keypoints
from .generate import Coefficients, frame_count, generate_coefficients, resample_frames
from .loader import (FILES, HF_REPO, convert_to_safetensors, load_joyvasa, load_motion_generator,
                     read_checkpoint)
from .model import DitTalkingHead
from .motion import JoyVASAMotion
from .pipeline import audio_features, coefficients_to_motion, generate_motion, motion_from_features
from .sampler import Guidance, NoiseSource, sample_window
from .settings import REGIONS, JoyVASASettings
from .template import MotionTemplate, denormalize, load_template

__all__ = [
    "CHINESE_HUBERT_BASE", "OFFICIAL", "TINY", "JoyVASAConfig", "ReferenceDrive",
    "reference_keypoints", "Coefficients", "frame_count", "generate_coefficients",
    "resample_frames", "FILES", "HF_REPO", "convert_to_safetensors", "load_joyvasa",
    "load_motion_generator", "read_checkpoint", "DitTalkingHead", "JoyVASAMotion",
    "audio_features", "coefficients_to_motion", "generate_motion", "motion_from_features", "Guidance", "NoiseSource", "sample_window",
    "REGIONS", "JoyVASASettings", "MotionTemplate", "denormalize", "load_template",
]
