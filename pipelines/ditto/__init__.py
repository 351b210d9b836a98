"""Ditto (antgroup/ditto-talkinghead): audio -> LivePortrait motion.

Typical use (nodes call exactly this)::

    bundle = load_ditto({"lmdm": ..., "cfg": ..., "hubert": ..., "stitch": ...}, device)
    feats = hubert_features(waveform, sample_rate, bundle["hubert"])        # AudioFeatures
    raw = generate_motion(bundle, feats, source, seed=0)                     # DittoMotion
    motion = stitch_motion(raw, source.motion, bundle["cfg"], fade_in=5)     # Motion (deg)
    kps = motion_keypoints(motion, source.motion, bundle["stitch"])          # Keypoints

Streaming: :class:`MotionStream` / :func:`stream_motion` + :class:`MotionDriver`.
"""
from ..core.audio import prepare_audio, resample
from .conditions import EMOTIONS, ConditionHandler, ConditionSource, emotion_schedule, parse_emotion
from .config import DittoConfig
from ..app.animate import motion_keypoints
from .driving import DittoMotion, MotionDriver, stitch_motion
from .eye import eye_attributes
from .frames import mirror_index, render_source_indices
from .hubert import HubertOnnx, HubertStream, hubert_features, wav2feat
from .lmdm import OFFICIAL, TINY, LMDMConfig, MotionDecoder
from .loader import FILES, load_ditto
from .motion_stitch import blink_schedule, fade_controls
from .pipeline import MotionStream, condition_source, generate_motion, source_motion, stream_motion
from .sampler import DDIMSampler, NoiseSource

__all__ = [
    "prepare_audio", "resample", "EMOTIONS", "ConditionHandler", "ConditionSource",
    "emotion_schedule", "parse_emotion", "DittoConfig", "DittoMotion", "MotionDriver",
    "motion_keypoints", "stitch_motion",
    "eye_attributes", "mirror_index", "render_source_indices", "HubertOnnx", "HubertStream",
    "hubert_features", "wav2feat", "OFFICIAL", "TINY", "LMDMConfig", "MotionDecoder", "FILES",
    "load_ditto", "blink_schedule", "fade_controls", "MotionStream", "condition_source",
    "generate_motion", "source_motion", "stream_motion", "DDIMSampler", "NoiseSource",
]
