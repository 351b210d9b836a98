"""Ditto (antgroup/ditto-talkinghead): audio -> LivePortrait motion.

Typical use (the nodes and the command line call exactly this)::

    bundle = load_ditto({"lmdm": ..., "cfg": ..., "hubert": ...}, device)
    feats = hubert_features(waveform, sample_rate, bundle["hubert"], ctx)     # AudioFeatures
    motion = source_motion(bundle, feats, source, DittoSampling(seed=0),
                           DittoControls(fade_in=5), ctx)                      # MOTION (absolute)

``generate_motion`` gives the raw LMDM rows (:class:`DittoMotion`) and ``stitch_motion``
applies a portrait and controls to them. Streaming: :class:`MotionStream` /
:func:`stream_motion` + :class:`MotionDriver`. Rendering is LivePortrait's
(liveportrait/drive.py and video.py).
"""
from .conditions import (EMOTIONS, ConditionHandler, ConditionSource, emotion_schedule,
                         parse_emotion)
from .config import DittoConfig
from .driving import DittoControls, DittoMotion, DittoRestitch, MotionDriver, stitch_motion
from .eye import eye_attributes
from ..core.timeline import mirror_index
from .frames import render_source_indices
from .hubert import HubertOnnx, HubertStream, hubert_features, wav2feat
from .lmdm import OFFICIAL, LMDMConfig, MotionDecoder
from .loader import FILES, load_ditto
from .motion_stitch import blink_schedule, fade_controls
from .pipeline import (DittoSampling, MotionStream, condition_source, generate_motion,
                       source_motion, stream_motion)
from .sampler import DDIMSampler, NoiseSource

__all__ = [
    "EMOTIONS", "ConditionHandler", "ConditionSource", "emotion_schedule", "parse_emotion",
    "DittoConfig", "DittoControls", "DittoMotion", "DittoRestitch", "MotionDriver",
    "stitch_motion", "eye_attributes", "mirror_index", "render_source_indices", "HubertOnnx",
    "HubertStream", "hubert_features", "wav2feat", "OFFICIAL", "LMDMConfig", "MotionDecoder",
    "FILES", "load_ditto", "blink_schedule", "fade_controls", "DittoSampling", "MotionStream",
    "condition_source", "generate_motion", "source_motion", "stream_motion", "DDIMSampler",
    "NoiseSource",
]
