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
from ..core.runtime import CPU, RunContext
from .controls import add_blinks, restrict_region, scale_changes, smooth_parts
from .generate import Coefficients, frame_count, generate_coefficients, resample_frames
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


def generate_coefficients_for(model, waveform, sample_rate: int,
                              settings: JoyVASASettings = JoyVASASettings(),
                              ctx: RunContext = CPU,
                              noise: Optional[NoiseSource] = None) -> tuple:
    """Any audio -> (Coefficients at the model's rate, samples at 16 kHz)."""
    wav = torch.from_numpy(prepare_audio(waveform, sample_rate, model.cfg.sample_rate))
    noise = noise if noise is not None else NoiseSource(settings.seed)
    return generate_coefficients(model, wav, settings.guidance, noise, ctx), wav.numel()


def generate_motion(bundle, waveform, sample_rate: int,
                    settings: JoyVASASettings = JoyVASASettings(), ctx: RunContext = CPU,
                    noise: Optional[NoiseSource] = None) -> JoyVASAMotion:
    """A loaded bundle (``load_joyvasa``) and audio (any rate and channel layout: (T,),
    (C,T) or ComfyUI's (B,C,T)) -> per-frame motion at ``settings.fps``."""
    model, template = bundle["generator"], bundle["template"]
    coef, n16 = generate_coefficients_for(model, waveform, sample_rate, settings, ctx, noise)
    return coefficients_to_motion(coef.motion, template, settings, n_audio=n16,
                                  source_fps=model.cfg.fps, sample_rate=model.cfg.sample_rate)


__all__ = ["Coefficients", "coefficients_to_motion", "generate_coefficients_for", "generate_motion"]
