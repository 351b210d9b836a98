"""Audio -> per-video-frame whisper features for MuseTalk v1.5 (spec §1.1).

Steps, with where we deliberately differ from the reference:

1. Log-mel (WhisperFeatureExtractor semantics, written out here): 30-s windows zero
   padded to 480000 samples, STFT n_fft 400 / hop 160 / periodic Hann / centre reflect,
   last frame dropped, power, Slaney mel 80 x 201, log10(max(., 1e-10)), floor at
   max - 8, then (x + 4) / 4.
2. whisper-tiny encoder (transformers, HF layout), all hidden states stacked:
   ``[emb, L1, L2, L3, LN(L4)]`` -> (frames, 5, 384) at 50 Hz.
3. Per video frame ``i``: a 10-step window starting at ``floor(i * 50 / fps)`` of the
   stream padded with ``2 * ceil(50/fps)`` zero frames in front -> (T, 50, 384),
   token = 5 * step + layer.

Differences from the reference, all invisible for audio <= 30 s at integer fps:

* **fps is not truncated** (bug B3): window starts and the frame count come from the
  exact time ``i / fps``, so 29.97 fps stays in sync over long clips.
* **Long audio has no seams** (bug B8). The reference encodes independent 30-s
  segments. We slide 30-s windows with a 20-s hop and keep, from every window, only
  the 20 s in its middle (the first window keeps its start, the last its end), so every
  kept frame has at least 5 s of attention context on both sides (except at the true
  ends of the audio). The log-mel floor (max - 8) uses the maximum over the whole
  audio, so loudness normalisation does not jump between windows either. For audio
  up to 30 s there is exactly one window and the result equals the reference.
* The right zero padding grows as needed, so asking for more frames than the audio
  covers gives silence-like windows rather than an index error.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from ..core.errors import MediaError
from ..core.types import AudioFeatures, ModelBundle

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SAMPLES = 30 * SAMPLE_RATE          # one encoder input: 30 s
MEL_FRAMES = WINDOW_SAMPLES // HOP         # 3000 log-mel frames per window
ENC_FPS = 50                               # encoder frames per second (20 ms each)
ENC_SAMPLES = SAMPLE_RATE // ENC_FPS       # 320 samples per encoder frame
WINDOW_FRAMES = 30 * ENC_FPS               # 1500 encoder frames per window
CONTEXT_FRAMES = 5 * ENC_FPS               # long audio: context kept on each side
HOP_FRAMES = WINDOW_FRAMES - 2 * CONTEXT_FRAMES
PAD_LEFT_UNITS, PAD_RIGHT_UNITS = 2, 2     # audio_padding_length_left / _right
STEPS_PER_FRAME = 2 * (PAD_LEFT_UNITS + PAD_RIGHT_UNITS + 1)  # 10 encoder steps


# ---------------------------------------------------------------------------------------
# log-mel


def _hz_to_mel(f):
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = 3.0 * f / 200.0
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    lin = 200.0 * m / 3.0
    log = 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular Slaney-normalised filters, float64."""
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    dist = edges[None, :] - fft_freqs[:, None]
    rising = -dist[:, :-2] / widths[:-1]
    falling = dist[:, 2:] / widths[1:]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    return bank * (2.0 / (edges[2:] - edges[:-2]))[None, :]


_FILTERS: dict = {}


def log10_mel(windows: torch.Tensor) -> torch.Tensor:
    """(K, 480000) float32 -> (K, 80, 3000) log10 power mel, before the floor."""
    key = str(windows.device)
    if key not in _FILTERS:
        _FILTERS[key] = torch.from_numpy(mel_filters()).to(windows.device, torch.float32)
    spec = torch.stft(windows, N_FFT, HOP, window=torch.hann_window(N_FFT, device=windows.device),
                      return_complex=True)
    power = spec[..., :-1].abs() ** 2
    mel = _FILTERS[key].T @ power
    return torch.clamp(mel, min=1e-10).log10()


def normalise_log_mel(log_mel: torch.Tensor, peak: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Whisper's dynamic-range floor (peak - 8) and affine rescale."""
    peak = log_mel.max() if peak is None else peak
    return (torch.maximum(log_mel, peak - 8.0) + 4.0) / 4.0


# ---------------------------------------------------------------------------------------
# windows over long audio


def window_plan(n_samples: int) -> list:
    """[(start_frame, keep_from, keep_to)] in encoder frames, covering the audio.

    ``keep_*`` are absolute encoder-frame indices; consecutive windows' kept ranges
    tile ``[0, n_samples // 320)`` without gaps or overlaps.
    """
    total = n_samples // ENC_SAMPLES
    if total <= WINDOW_FRAMES:
        return [(0, 0, total)]
    plan, start = [], 0
    while True:
        last = start + WINDOW_FRAMES >= total
        keep_from = 0 if start == 0 else start + CONTEXT_FRAMES
        keep_to = total if last else start + CONTEXT_FRAMES + HOP_FRAMES
        plan.append((start, keep_from, keep_to))
        if last:
            return plan
        start += HOP_FRAMES


def _window_samples(wave: torch.Tensor, start_frame: int) -> torch.Tensor:
    a = start_frame * ENC_SAMPLES
    seg = wave[a:a + WINDOW_SAMPLES]
    return torch.nn.functional.pad(seg, (0, WINDOW_SAMPLES - seg.shape[0]))


def input_features(wave: torch.Tensor, plan: Optional[list] = None) -> torch.Tensor:
    """(K, 80, 3000) encoder inputs for the windows of ``plan`` (global floor)."""
    plan = window_plan(wave.shape[0]) if plan is None else plan
    logs = log10_mel(torch.stack([_window_samples(wave, s) for s, _a, _b in plan]))
    return normalise_log_mel(logs, logs.max())


EncoderFn = Callable[[torch.Tensor], torch.Tensor]  # (B,80,3000) -> (B,1500,L+1,D)


def whisper_encoder_fn(encoder: torch.nn.Module) -> EncoderFn:
    """Wrap a transformers ``WhisperEncoder``: stack all hidden states on dim 2.

    transformers returns ``[emb, L1, .., L(n-1), layer_norm(Ln)]``: the last entry is
    the final LayerNorm's output, which is what v1.5 was trained on.
    """
    p = next(encoder.parameters())

    def run(mel: torch.Tensor) -> torch.Tensor:
        out = encoder(mel.to(p.device, p.dtype), output_hidden_states=True)
        return torch.stack(out.hidden_states, dim=2)

    return run


@torch.inference_mode()
def stacked_hidden_states(encode: EncoderFn, wave: torch.Tensor, window_batch: int = 4,
                          check_interrupt: Optional[Callable] = None) -> torch.Tensor:
    """(n_samples,) float32 16 kHz -> (n_samples // 320, L+1, D) float32 on CPU."""
    plan = window_plan(wave.shape[0])
    feats = input_features(wave.float().cpu(), plan)
    parts = []
    for b in range(0, len(plan), window_batch):
        if check_interrupt is not None:
            check_interrupt()
        hs = encode(feats[b:b + window_batch]).float().cpu()
        for j, (start, keep_from, keep_to) in enumerate(plan[b:b + window_batch]):
            parts.append(hs[j, keep_from - start:keep_to - start])
    return torch.cat(parts, dim=0)


# ---------------------------------------------------------------------------------------
# per-frame windows


def frame_count(n_samples: int, fps: float) -> int:
    """Video frames the audio covers: floor(duration * fps) with the exact fps."""
    return int(math.floor(n_samples * float(fps) / SAMPLE_RATE + 1e-9))


def frame_windows(hidden: torch.Tensor, fps: float, n_frames: int) -> torch.Tensor:
    """(F, L+1, D) -> (n_frames, 10*(L+1), D) per-video-frame windows (no PE)."""
    fps = float(fps)
    units = math.ceil(ENC_FPS / fps)
    left = units * PAD_LEFT_UNITS
    # window i starts at floor(i*50/fps) of the left-padded stream; +1e-9 keeps
    # integer results of the exact time from falling one frame short in float
    starts = np.floor(np.arange(n_frames, dtype=np.float64) * ENC_FPS / fps + 1e-9).astype(np.int64)
    need = int(starts.max()) + STEPS_PER_FRAME if n_frames else 0
    right = max(units * 3 * PAD_RIGHT_UNITS, need - left - hidden.shape[0])
    zeros = hidden.new_zeros
    padded = torch.cat([zeros((left,) + hidden.shape[1:]), hidden,
                        zeros((right,) + hidden.shape[1:])], dim=0)
    idx = torch.from_numpy(starts)[:, None] + torch.arange(STEPS_PER_FRAME)[None, :]
    win = padded[idx]                                   # (T, 10, L+1, D)
    return win.reshape(n_frames, -1, hidden.shape[-1])  # token = step * (L+1) + layer


def positional_encoding(n: int, d_model: int) -> torch.Tensor:
    """MuseTalk's sinusoidal table rows 0..n-1, computed in float32 as the reference."""
    div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pos = torch.arange(n).float()[:, None]
    pe = torch.zeros(n, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


def check_waveform(waveform) -> torch.Tensor:
    """Accept (T,), (1,T), (C,T) or (B,C,T) float audio at 16 kHz -> (T,) float32 mono."""
    w = torch.as_tensor(np.asarray(waveform) if not isinstance(waveform, torch.Tensor) else waveform)
    if not torch.is_floating_point(w):
        raise MediaError("audio must be float samples in -1..1 (got integer samples); "
                         "convert it with the pack's audio loader")
    while w.dim() > 2:
        if w.shape[0] != 1:
            raise MediaError(f"audio batch of {w.shape[0]} clips: pass one clip at a time")
        w = w[0]
    if w.dim() == 2:
        w = w.mean(0)  # down-mix channels
    w = w.float()
    if w.numel() < ENC_SAMPLES:
        raise MediaError(f"audio is too short ({w.numel()} samples at 16 kHz); "
                         "MuseTalk needs at least one video frame of speech")
    if not torch.isfinite(w).all():
        raise MediaError("audio contains NaN or infinite samples")
    return w


def whisper_features(bundle: ModelBundle, waveform16k, fps: float, n_frames: Optional[int] = None,
                     window_batch: int = 4, check_interrupt: Optional[Callable] = None) -> AudioFeatures:
    """float mono 16 kHz audio -> AudioFeatures (T, 10*(L+1), D) at ``fps`` (pre-PE).

    ``n_frames`` defaults to floor(duration * fps); pass the video length to force it.
    Resample other rates first (:func:`resample.resample`).
    """
    if not fps or float(fps) <= 0:
        raise MediaError(f"fps must be positive, got {fps}")
    wave = check_waveform(waveform16k)
    hidden = stacked_hidden_states(whisper_encoder_fn(bundle["whisper"]), wave, window_batch,
                                   check_interrupt)
    t = frame_count(wave.numel(), fps) if n_frames is None else int(n_frames)
    return AudioFeatures(features=frame_windows(hidden, fps, t), kind="whisper", fps=float(fps),
                         seconds=wave.numel() / SAMPLE_RATE)
