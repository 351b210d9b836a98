"""Audio of any length -> normalised motion coefficients at the model's 25 fps, exactly as
the reference ``gen_motion_sequence`` cuts it into windows; then any output frame rate.

Windows (reference semantics):
* 1280 zero samples (2 frames) are put before the audio and 640 (1 frame) after it, so
  the first frames, the reference of relative driving, are silent;
* ``clip_len = int(samples / 16000 · fps)`` frames; windows of ``n_motions`` frames
  (64000 samples), the last one padded (zeros, or the last sample for
  ``pad_mode="replicate"``); padded frames are cut off at the end;
* window 0 starts from the learned start features, window i > 0 from the last
  ``n_prev_motions`` motions and audio features of window i − 1;
* the initial noise x_T of window 0 is reused for every later window (the reference
  passes it back), while each window draws fresh step noises.

Output frame rate: ``frame_count`` frames = ceil(audio seconds · fps), frame i sampled at
t = i / fps from the 25 fps sequence by linear interpolation (no drift; at 25 fps this is
the reference's frames themselves, cut to the audio's length).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import torch
import torch.nn.functional as F

from ..core.runtime import CPU, RunContext
from .sampler import Guidance, NoiseSource, sample_window

LEAD_SILENCE = 1280      # samples of silence before the audio (the reference's 2 frames)
TAIL_SILENCE = 640       # and after it


@dataclass
class WindowPlan:
    samples: int           # audio samples after the silence padding
    clip_len: int          # motion frames kept
    n_windows: int
    pad_samples: int       # zeros (or replicas) added to fill the last window
    pad_frames: int        # frames of the last window that are cut off


def plan_windows(n_audio: int, cfg) -> WindowPlan:
    samples = n_audio + LEAD_SILENCE + TAIL_SILENCE
    clip_len = int(samples / cfg.sample_rate * cfg.fps)
    n_win = 1 if clip_len <= cfg.n_motions else math.ceil(clip_len / cfg.n_motions)
    pad = cfg.window_samples * n_win - samples
    return WindowPlan(samples, clip_len, n_win, pad,
                      math.ceil(pad / cfg.samples_per_frame) if pad > 0 else 0)


def window_indicator(plan: WindowPlan, cfg) -> torch.Tensor:
    """(n_windows, n_motions): 1 for real frames, 0 for the padding of the last window (the
    reference builds it; its released denoiser has no input for it)."""
    ind = torch.ones(plan.n_windows, cfg.n_motions)
    if plan.pad_frames > 0:
        ind[-1, -plan.pad_frames:] = 0
    return ind


@dataclass
class Coefficients:
    """Normalised motion of a whole clip at ``fps`` (the model's rate).

    motion (clip_len, 70); window_motion (n_win, L, 70) and window_audio_feat
    (n_win, L, d) per window; prev_motion_in / prev_audio_in: what each window i > 0 was
    conditioned on; plan: how the audio was cut.
    """

    motion: torch.Tensor
    fps: float
    plan: WindowPlan
    window_motion: torch.Tensor
    window_audio_feat: torch.Tensor
    prev_motion_in: list = field(default_factory=list)
    prev_audio_in: list = field(default_factory=list)


def padded_audio(wav: torch.Tensor, cfg) -> tuple:
    """16 kHz mono -> (the silence-padded, window-filled audio, its WindowPlan)."""
    wav = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
    audio = F.pad(wav, (LEAD_SILENCE, TAIL_SILENCE))
    plan = plan_windows(wav.numel(), cfg)
    if plan.pad_samples > 0:
        value = float(audio[-1]) if cfg.pad_mode == "replicate" else 0.0
        audio = F.pad(audio, (0, plan.pad_samples), value=value)
    return audio, plan


@torch.inference_mode()
def encode_windows(model, wav: torch.Tensor, ctx: RunContext = CPU) -> tuple:
    """wav: (samples,) 16 kHz mono -> (WindowPlan, audio features (n_win, L, d)): HuBERT and
    the feature map run on each window's own audio, as the reference does."""
    cfg = model.cfg
    audio, plan = padded_audio(wav, cfg)
    audio, unit, feats = audio.to(ctx.device), cfg.samples_per_frame, []
    for w in range(plan.n_windows):
        ctx.check()
        chunk = audio[round(w * cfg.n_motions * unit):round((w + 1) * cfg.n_motions * unit)]
        with ctx.autocast():
            feats.append(model.extract_audio_feature(chunk[None], check=ctx.check).float()[0].cpu())
        ctx.report(w + 1, plan.n_windows)
    return plan, torch.stack(feats)


@torch.inference_mode()
def sample_coefficients(model, plan: WindowPlan, feats: torch.Tensor, guidance: Guidance = Guidance(),
                        noise: NoiseSource = None, ctx: RunContext = CPU) -> Coefficients:
    """Window features (n_win, L, d) -> :class:`Coefficients`: one diffusion run per window,
    each conditioned on the previous window's last motions and features."""
    cfg = model.cfg
    noise = noise if noise is not None else NoiseSource(0)
    x_T = noise.initial((1, cfg.n_motions, cfg.motion_feat_dim)).to(ctx.device)
    prev_motion = prev_audio = None
    motions, out = [], Coefficients(None, cfg.fps, plan, None, feats)
    for w in range(plan.n_windows):
        feat = feats[w:w + 1].to(ctx.device)
        if w > 0:
            out.prev_motion_in.append(prev_motion.cpu())
            out.prev_audio_in.append(prev_audio.cpu())
        motion = sample_window(model, feat, prev_motion, prev_audio, x_T, noise, guidance,
                               ctx.part(w, plan.n_windows))
        prev_motion = motion[:, -cfg.n_prev_motions:].clone()
        prev_audio = feat[:, -cfg.n_prev_motions:]
        motions.append(motion[0].cpu())
    out.window_motion = torch.stack(motions)
    out.motion = out.window_motion.reshape(-1, cfg.motion_feat_dim)[:plan.clip_len].clone()
    return out


def generate_coefficients(model, wav: torch.Tensor, guidance: Guidance = Guidance(),
                          noise: NoiseSource = None, ctx: RunContext = CPU) -> Coefficients:
    """wav: (samples,) 16 kHz mono float -> :class:`Coefficients` (see the module doc)."""
    plan, feats = encode_windows(model, wav, ctx.with_progress(None))
    return sample_coefficients(model, plan, feats, guidance, noise, ctx)


# ---------------------------------------------------------------------------------------
# output frame rate


def _rate(fps) -> Fraction:
    """fps as an exact fraction, as the video writer takes it (29.97002997... -> 30000/1001,
    29.97 -> 2997/100); not media.exact_fps, which snaps probed rates to NTSC ones."""
    return Fraction(fps).limit_denominator(100000) if not isinstance(fps, Fraction) else fps


def frame_count(n_samples: int, sample_rate: int, fps) -> int:
    """ceil(seconds · fps) in exact arithmetic: frames that cover the whole audio."""
    return math.ceil(Fraction(int(n_samples), int(sample_rate)) * _rate(fps))


def resample_frames(x: torch.Tensor, src_fps, n_out: int, dst_fps) -> torch.Tensor:
    """(T, ...) at ``src_fps`` -> (n_out, ...): frame i = x at time i / dst_fps, linear
    between neighbours, held at the ends. Equal rates return the frames themselves."""
    src, dst = _rate(src_fps), _rate(dst_fps)
    if src == dst and n_out <= x.shape[0]:
        return x[:n_out].clone()
    ratio = src / dst
    # exact positions i·src/dst as integer part + remainder (no float drift)
    num, den = ratio.numerator, ratio.denominator
    i = torch.arange(n_out, dtype=torch.int64)
    base = torch.div(i * num, den, rounding_mode="floor")
    frac = ((i * num) % den).to(torch.float64) / den
    last = x.shape[0] - 1
    i0 = base.clamp(max=last)
    i1 = (base + 1).clamp(max=last)
    frac = torch.where(base >= last, torch.zeros_like(frac), frac)
    w = frac.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    return x[i0] * (1 - w) + x[i1] * w
