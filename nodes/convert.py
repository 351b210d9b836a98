"""Packing and unpacking of ComfyUI's core values (IMAGE, MASK, AUDIO)."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..pipelines.core.errors import MediaError, ShapeError


def image_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(N,H,W,3) or (H,W,3) float 0..1 numpy -> IMAGE [B,H,W,3] float32."""
    t = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return t.unsqueeze(0) if t.ndim == 3 else t


def check_image(image, name: str = "image") -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ShapeError(f"'{name}' must be an IMAGE batch [B,H,W,3]; got {shape}: connect an IMAGE "
                         "output (e.g. Load Source's frames).")
    if image.shape[-1] == 1:  # grayscale from some custom nodes
        image = image.expand(-1, -1, -1, 3)
    elif image.shape[-1] == 4:  # RGBA from some loaders: drop alpha like core nodes do
        image = image[..., :3]
    if image.shape[0] == 0:
        raise ShapeError(f"'{name}' is an empty IMAGE batch (0 frames): connect frames with at "
                         "least one image.")
    return image


def check_fps(fps, name: str = "fps") -> float:
    """A frame-rate input as a float, refused clearly when it is not a positive number
    (an API prompt can send NaN or infinity past the widget's limits)."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise MediaError(f"'{name}' must be a positive number of frames per second, got {fps!r}; "
                         "connect Load Source's fps or type the video's rate (e.g. 25).")
    return value


def audio_to_numpy(audio) -> tuple:
    """Core AUDIO {"waveform": [B,C,T], "sample_rate"} -> ((C,T) float32 numpy, rate).

    Only the first batch item is used (a talking head has one voice track)."""
    if not isinstance(audio, dict) or "waveform" not in audio:
        raise MediaError("The audio input is not a ComfyUI AUDIO value; connect a Load Audio "
                         "(or Load Source) output.")
    wav = audio["waveform"]
    try:
        rate = float(audio.get("sample_rate") or 0)
    except (TypeError, ValueError):
        rate = 0.0
    if not math.isfinite(rate) or rate <= 0 or rate != int(rate):
        raise MediaError(f"The audio's sample rate ({audio.get('sample_rate')!r}) is not a positive "
                         "whole number of Hz; connect a Load Audio output.")
    rate = int(rate)
    if not isinstance(wav, (torch.Tensor, np.ndarray)):
        raise MediaError("The audio's waveform is not a tensor; connect a Load Audio output.")
    wav = torch.as_tensor(wav).detach().float().cpu()
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim == 3:
        wav = wav[0]
    if wav.ndim != 2 or wav.shape[-1] == 0:
        raise MediaError(f"The audio is empty or malformed (waveform shape {tuple(audio['waveform'].shape)}); "
                         "connect audio with sound in it.")
    return wav.numpy(), rate


def numpy_to_audio(wav: np.ndarray, rate: int) -> dict:
    """(C,T) or (T,) float32 -> core AUDIO dict with B=1."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]
    return {"waveform": torch.from_numpy(wav.copy()).unsqueeze(0), "sample_rate": int(rate)}
