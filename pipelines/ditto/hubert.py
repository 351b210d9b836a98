"""Ditto's audio features: the streaming HuBERT ONNX, chunked (spec ditto.md §3.4).

The released ``hubert_streaming_fix_kv.onnx`` (1.46 GB, HuBERT-large with a baked-in
pseudo-context KV cache) maps ``input_values`` (1, L) float32 16 kHz to
``encoding_out`` (T, 1024) at 50 Hz. It is run through onnxruntime; no PyTorch
HuBERT reproduces its features.

Chunking (golden ``wav2feat_chunking``): 6480 samples = 3 past + 5 valid + 2 future
frames of 640 samples plus 80; of the 20 outputs, rows [-14:-4] are averaged in pairs
-> 5 features at 25 fps. Offline pads 2000 zeros in front (so each pair is centred on
its video frame) and 6480 behind, and steps 5 frames (3200 samples) at a time.
Online prefixes 1920 zeros instead (features shifted by 5 ms, as in the reference).
"""
from __future__ import annotations

import math
import os
from typing import Callable, Optional

import numpy as np
import torch

from ..core.errors import MissingWeightsError
from ..core.types import AudioFeatures
from ..core.runtime import CPU, RunContext
from ..core.audio import prepare_audio

SAMPLE_RATE = 16000
FPS = 25
HOP = SAMPLE_RATE // FPS                 # 640 samples per video frame
PAST, VALID, FUTURE = 3, 5, 2            # chunk layout in video frames
CHUNK = (PAST + VALID + FUTURE) * HOP + 80          # 6480
STRIDE = VALID * HOP                                 # 3200
OFFLINE_PREFIX = CHUNK - 7 * HOP                     # 2000
ONLINE_PREFIX = PAST * HOP                           # 1920
FEAT_DIM = 1024

Encoder = Callable[[np.ndarray], np.ndarray]   # (CHUNK,) float32 -> (20, 1024)


def num_frames(n_samples: int) -> int:
    """Video frames for ``n_samples`` at 16 kHz, computed like the reference
    (``ceil(n/16000*25)`` in floating point, so an exact multiple of 640 samples can
    get one extra frame; kept so frame counts match the original)."""
    return int(math.ceil(n_samples / SAMPLE_RATE * FPS))


def chunk_features(encoded: np.ndarray) -> np.ndarray:
    """Encoder output of one chunk (20, D) -> (5, D): rows [-14:-4] averaged in pairs."""
    e = np.asarray(encoded, dtype=np.float32)
    if e.ndim == 3:
        e = e[0]
    lo, hi = -(VALID + FUTURE) * 2, -FUTURE * 2
    return e[lo:hi].reshape(VALID, 2, -1).mean(axis=1)


def wav2feat(audio16k: np.ndarray, encoder: Encoder, ctx: RunContext = CPU) -> np.ndarray:
    """Whole-file features (N, D), N = :func:`num_frames`."""
    audio = np.asarray(audio16k, dtype=np.float32).reshape(-1)
    n = num_frames(len(audio))
    padded = np.concatenate([np.zeros(OFFLINE_PREFIX, np.float32), audio,
                             np.zeros(CHUNK, np.float32)])
    feats = []
    for i in range(0, n, VALID):
        ctx.check()
        # i*640 exactly; the reference's int(i*0.04*16000) is one sample early for a
        # few i beyond 64 s, which is inaudible
        start = i * HOP
        feats.append(chunk_features(encoder(padded[start:start + CHUNK])))
        ctx.report(min(i + VALID, n), n)
    if not feats:
        return np.zeros((0, FEAT_DIM), np.float32)
    return np.concatenate(feats, axis=0)[:n]


class HubertStream:
    """Incremental features for live audio: ``push(samples)`` -> (5k, D) new features,
    ``finish()`` -> the zero-padded tail. Matches the reference's online chunking."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.buf = np.zeros(ONLINE_PREFIX, np.float32)
        self.pos = 0            # start of the next chunk within buf

    def _take(self, final: bool) -> np.ndarray:
        out = []
        while len(self.buf) - self.pos >= CHUNK or (final and self.pos < len(self.buf)):
            chunk = self.buf[self.pos:self.pos + CHUNK]
            if len(chunk) < CHUNK:
                chunk = np.pad(chunk, (0, CHUNK - len(chunk)))
            out.append(chunk_features(self.encoder(chunk)))
            self.pos += STRIDE
        # keep only what later chunks still need
        drop = min(self.pos, len(self.buf))
        self.buf, self.pos = self.buf[drop:], self.pos - drop
        return np.concatenate(out, axis=0) if out else np.zeros((0, FEAT_DIM), np.float32)

    def push(self, samples16k: np.ndarray) -> np.ndarray:
        self.buf = np.concatenate([self.buf, np.asarray(samples16k, np.float32).reshape(-1)])
        return self._take(final=False)

    def finish(self) -> np.ndarray:
        return self._take(final=True)


class HubertOnnx:
    """The HuBERT ONNX through onnxruntime; the session is created on first use.

    CUDA execution when ``device`` is a CUDA device and onnxruntime has the CUDA
    provider, CPU otherwise.
    """

    def __init__(self, path_or_session, device="cpu", threads: Optional[int] = None):
        self.device = torch.device(device)
        self.threads = threads
        if isinstance(path_or_session, (str, os.PathLike)):
            self.path = os.fspath(path_or_session)
            if not os.path.isfile(self.path):
                raise MissingWeightsError(
                    f"HuBERT model not found: {self.path}. Download "
                    "ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx from the "
                    "HuggingFace repo digital-avatar/ditto-talkinghead into that path.")
            self._session = None
        else:
            self.path, self._session = None, path_or_session

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = int(self.threads)
            providers = ["CPUExecutionProvider"]
            if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            self._session = ort.InferenceSession(self.path, opts, providers=providers)
        return self._session

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        sess = self.session
        name = sess.get_inputs()[0].name     # 'input_values' in the released file
        out = sess.run(None, {name: np.asarray(chunk, np.float32).reshape(1, -1)})[0]
        return out[0] if out.ndim == 3 else out


def as_encoder(hubert) -> Encoder:
    """A HubertOnnx, an onnxruntime session, a path, or any chunk -> (20,D) callable."""
    if hubert is None:
        raise MissingWeightsError(
            "no HuBERT model: Ditto's audio features need "
            "ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx (HuggingFace "
            "digital-avatar/ditto-talkinghead); load it with the Ditto models")
    if isinstance(hubert, HubertOnnx) or callable(hubert) and not hasattr(hubert, "run"):
        return hubert
    return HubertOnnx(hubert)


def hubert_features(waveform, sample_rate: int, hubert, ctx: RunContext = CPU) -> AudioFeatures:
    """Any audio (T,), (C,T) or (B,C,T) at any rate -> 25 fps HuBERT features (N,1024)."""
    audio = prepare_audio(waveform, sample_rate, SAMPLE_RATE)
    feats = wav2feat(audio, as_encoder(hubert), ctx)
    return AudioFeatures(torch.from_numpy(feats), "hubert", float(FPS), len(audio) / SAMPLE_RATE)


def silence_features(n_frames: int, hubert) -> np.ndarray:
    """HuBERT features of ``n_frames`` of silence (the online warm-up buffer)."""
    return wav2feat(np.zeros(n_frames * HOP, np.float32), as_encoder(hubert))[:n_frames]
