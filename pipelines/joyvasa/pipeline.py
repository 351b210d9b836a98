"""Audio -> :class:`JoyVASAMotion`: the whole JoyVASA run in the reference's order.

1. 16 kHz mono audio -> normalised coefficients at 25 fps (generate.py);
2. de-normalisation with the motion template (template.py);
3. pose smoothing (the reference's EMA) and optional expression smoothing;
4. animation region and multiplier (relative to the first frame);
5. resampling to the output frame rate, ceil(seconds · fps) frames;
6. optional blinks at the output rate.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..core.audio import prepare_audio
from ..core.errors import TalkingHeadError
from ..core.runtime import CPU, RunContext
from ..core.types import AudioFeatures
from .controls import add_blinks, restrict_region, scale_changes, smooth_parts
from .generate import (Coefficients, encode_windows, frame_count, plan_windows, resample_frames,
                       sample_coefficients)
from .motion import JoyVASAMotion
from .sampler import NoiseSource
from .settings import JoyVASASettings
from .template import MotionTemplate, denormalize


def coefficients_to_motion(coef: torch.Tensor, template: MotionTemplate,
                           settings: JoyVASASettings = JoyVASASettings(),
                           n_audio: Optional[int] = None, source_fps: float = 25.0,
                           sample_rate: int = 16000) -> JoyVASAMotion:
    """Normalised coefficients (T, 70) at ``source_fps`` -> motion at ``settings.fps``.

    ``n_audio``: samples of the original audio (at ``sample_rate``); the output then has
    ceil(seconds · fps) frames. None keeps every generated frame (at ``source_fps``)."""
    parts = denormalize(coef, template)
    parts = smooth_parts(parts, settings.smoothing, settings.expression_smoothing)
    parts = scale_changes(restrict_region(parts, settings.region), settings.multiplier)
    fps = float(settings.fps)
    if n_audio is None:
        n_out = len(coef) if fps == source_fps else int(len(coef) * fps / source_fps)
    else:
        n_out = frame_count(n_audio, sample_rate, settings.fps)
    parts = {k: resample_frames(v, source_fps, n_out, settings.fps) for k, v in parts.items()}
    if settings.blinks:
        parts["exp"] = add_blinks(parts["exp"], fps, settings.seed, settings.blink_strength,
                                  settings.blink_gap_s)
    return JoyVASAMotion(exp=parts["exp"], scale=parts["scale"], t=parts["t"],
                         pitch=parts["pitch"].reshape(-1), yaw=parts["yaw"].reshape(-1),
                         roll=parts["roll"].reshape(-1), fps=fps)


def audio_features(bundle, waveform, sample_rate: int, ctx: RunContext = CPU) -> AudioFeatures:
    """Any audio ((T,), (C,T) or ComfyUI's (B,C,T), any rate) -> JoyVASA's features: HuBERT
    and the feature map per 100-frame window, as rows at the model's 25 fps."""
    model = bundle["generator"]
    wav = torch.from_numpy(prepare_audio(waveform, sample_rate, model.cfg.sample_rate))
    _, feats = encode_windows(model, wav, ctx)
    return AudioFeatures(feats.reshape(-1, feats.shape[-1]), "joyvasa", float(model.cfg.fps),
                         wav.numel() / model.cfg.sample_rate)


def motion_from_features(bundle, features: AudioFeatures, settings: JoyVASASettings = JoyVASASettings(),
                         ctx: RunContext = CPU, noise: Optional[NoiseSource] = None) -> JoyVASAMotion:
    """JoyVASA features -> per-frame motion at ``settings.fps`` (ceil(seconds · fps) frames)."""
    if features.kind != "joyvasa":
        raise TalkingHeadError(f"JoyVASA needs its own audio features (Audio to JoyVASA Features), "
                               f"got '{features.kind}' features")
    model, template = bundle["generator"], bundle["template"]
    cfg = model.cfg
    n16 = int(round(features.seconds * cfg.sample_rate))
    plan = plan_windows(n16, cfg)
    feats = features.features.reshape(-1, cfg.n_motions, features.features.shape[-1])
    if feats.shape[0] != plan.n_windows:
        raise TalkingHeadError(f"these JoyVASA features hold {feats.shape[0]} windows but "
                               f"{features.seconds:.2f} s of audio needs {plan.n_windows}; make them "
                               "again from the audio (Audio to JoyVASA Features)")
    noise = noise if noise is not None else NoiseSource(settings.seed)
    coef = sample_coefficients(model, plan, feats, settings.guidance, noise, ctx)
    return coefficients_to_motion(coef.motion, template, settings, n_audio=n16,
                                  source_fps=cfg.fps, sample_rate=cfg.sample_rate)


def generate_motion(bundle, waveform, sample_rate: int,
                    settings: JoyVASASettings = JoyVASASettings(), ctx: RunContext = CPU,
                    noise: Optional[NoiseSource] = None) -> JoyVASAMotion:
    """A loaded bundle (``load_joyvasa``) and audio (any rate and channel layout: (T,),
    (C,T) or ComfyUI's (B,C,T)) -> per-frame motion at ``settings.fps``."""
    features = audio_features(bundle, waveform, sample_rate, ctx.part(0, 2))
    return motion_from_features(bundle, features, settings, ctx.part(1, 2), noise)


__all__ = ["Coefficients", "audio_features", "coefficients_to_motion", "generate_motion",
           "motion_from_features"]
