"""JoyVASA's audio features: chinese-hubert-base run at twice the motion frame rate.

Per window of audio (16 kHz, not normalised):

1. :func:`pad_audio` pads to a whole number of 320-sample HuBERT hops (the reference
   reflects *twice*, the second time reflecting the already padded signal);
2. HuBERT's CNN gives 50 Hz features; the first ``4F`` are kept and linearly resampled
   to ``2F`` frames (JoyVASA's HuBERT subclass does this before the transformer);
3. feature projection and the 12-layer transformer run on those ``2F`` frames;
4. the result is linearly resampled to ``F`` frames (for 2F -> F: the mean of pairs) and
   mapped to the denoiser width by ``audio_feature_map`` (a Linear of the main model).

The encoder itself is transformers' ``HubertModel`` (its parameter names are the
checkpoint's ``audio_encoder.*`` keys); only its forward is re-sequenced here.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Optional

import torch
import torch.nn.functional as F

HUBERT_FPS = 50          # one CNN frame per 320 samples at 16 kHz
HOP = 320
PAD_THRESHOLD = 80


def hubert_config(fields: Mapping):
    """A transformers ``HubertConfig`` from config.json-style fields, eager attention (the
    reference's numerics; HuBERT runs once per 4 s window, so speed hardly matters)."""
    from transformers import HubertConfig

    cfg = HubertConfig(**{k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()})
    cfg._attn_implementation = "eager"
    return cfg


def build_hubert(fields: Mapping, empty: bool = False):
    """transformers ``HubertModel`` for ``fields``; ``empty``: uninitialised storage (the
    loader overwrites every value, so the 95M-parameter random init is skipped)."""
    from transformers import HubertModel

    cfg = hubert_config(fields)
    if not empty:
        return HubertModel(cfg).eval()
    with torch.device("meta"):
        model = HubertModel(cfg)
    return model.to_empty(device="cpu").eval()


def pad_audio(audio: torch.Tensor, hop: int = HOP, threshold: int = PAD_THRESHOLD) -> torch.Tensor:
    """(N, L) -> (N, L') padded so that HuBERT's CNN covers every hop (reference pad_audio)."""
    length = audio.shape[-1]
    side = math.ceil((hop * (length // hop) + threshold - length) / 2)
    if side < 0:
        return audio
    reflect, replicate = side // 2, side % 2
    if reflect > 0:
        # twice: the reference pads the padded signal again (2*reflect samples per side)
        audio = F.pad(audio, (reflect, reflect), mode="reflect")
        audio = F.pad(audio, (reflect, reflect), mode="reflect")
    if replicate > 0:
        audio = F.pad(audio, (1, 1), mode="replicate")
    return audio


def _interpolate(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, T) -> (N, C, size), linear, align_corners=False (the reference's resampling)."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=size, mode="linear", align_corners=False)


def hubert_hidden(hubert, audio: torch.Tensor, frame_num: int, fps: float = 25.0,
                  trace: Optional[dict] = None, check: Optional[Callable] = None) -> torch.Tensor:
    """(N, L) waveform -> (N, frame_num, hidden) HuBERT features at ``fps``.

    ``trace`` (a dict) receives the intermediate tensors, for tests and debugging;
    ``check`` (a stop-request check) is called between the CNN and the transformer.
    """
    padded = pad_audio(audio)
    feats = hubert.feature_extractor(padded)                        # (N, C, T) at 50 Hz
    double = 2 * frame_num
    kept = feats[:, :, :round(double * HUBERT_FPS / fps)]
    resampled = _interpolate(kept, double)                          # (N, C, 2F)
    hidden = hubert.feature_projection(resampled.transpose(1, 2))
    if isinstance(hidden, tuple):                                   # wav2vec2-style return
        hidden = hidden[0]
    projected = hidden
    if check is not None:
        check()
    hidden = hubert.encoder(hidden)[0]                              # (N, 2F, hidden)
    back = _interpolate(hidden.transpose(1, 2), frame_num).transpose(1, 2)
    if trace is not None:
        trace.update(padded=padded, cnn_features=feats, interp_2L=resampled.transpose(1, 2),
                     proj_2L=projected, hidden_2L=hidden, hidden_L=back)
    return back
