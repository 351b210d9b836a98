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
import torch.nn.functional as F

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

    The returned function also takes ``rows=(lo, hi)``: only those encoder frames are
    returned, and the last layer runs its queries, MLP and final LayerNorm on those
    rows only (every earlier layer still attends over the whole 30-s window, so the
    kept rows are the same numbers). For 10 s of audio that skips ~2/3 of the last
    layer. The layers are run from the module's own weights (see ``_WhisperStack``);
    a module that does not have the WhisperEncoder layout runs through its forward.
    """
    p = next(encoder.parameters())
    stack = _WhisperStack.of(encoder)

    @torch.inference_mode()
    def run(mel: torch.Tensor, rows: Optional[tuple] = None) -> torch.Tensor:
        mel = mel.to(p.device, p.dtype)
        if stack is not None and stack.fits(mel):
            return stack(mel, rows)
        out = encoder(mel, output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=2)
        return hs if rows is None else hs[:, rows[0]:rows[1]]

    run.takes_rows = True
    return run


_TAIL_MARGIN = 12  # mel columns of constant context around the skipped silent tail
_ONEDNN: dict = {}  # "ok": whether oneDNN linears work here (probed once)


def _onednn_linear_ok(weight: torch.Tensor) -> bool:
    """Whether linear layers on ``weight``'s device/dtype can run through oneDNN.

    On x86 CPUs torch's float32 ``F.linear`` goes to its BLAS (MKL), which on some CPUs
    (AMD) runs at half oneDNN's speed for these shapes; torch's own fused
    ``mkldnn._linear_pointwise`` (what torch.compile emits on CPU) is used instead when
    it exists and agrees with ``F.linear`` on a probe.
    """
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return False
    if "ok" not in _ONEDNN:
        try:
            gen = torch.Generator().manual_seed(0)
            x, w, b = (torch.randn(s, generator=gen) for s in ((7, 16), (5, 16), (5,)))
            with torch.inference_mode():
                got = torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "none")
                _ONEDNN["ok"] = bool(torch.allclose(got, F.gelu(F.linear(x, w, b)),
                                                    rtol=1e-4, atol=1e-5))
        except (AttributeError, RuntimeError, TypeError):
            _ONEDNN["ok"] = False
    return _ONEDNN["ok"]


def _is_exact_gelu(fn) -> bool:
    """transformers' "gelu" activation (it keeps F.gelu as ``act``) or nn.GELU()."""
    if isinstance(fn, torch.nn.GELU):
        return fn.approximate == "none"
    return getattr(fn, "act", None) is F.gelu


class _WhisperStack:
    """The WhisperEncoder forward (eval, transformers' SDPA path) written out on the
    module's weights, so that the last layer can skip the rows nobody keeps and the
    q/k/v projections run as one matmul. Same operations in the same order as
    transformers (the q scaling after the projection, SDPA with scale 1, LayerNorms
    and exact GELU), so the full-window output matches it to float rounding (to a
    few 1e-6 when the linears run through oneDNN: another summation order)."""

    def __init__(self, encoder: torch.nn.Module):
        self.enc = encoder
        self.onednn = _onednn_linear_ok(next(encoder.parameters()))
        self.qkv = []
        for layer in encoder.layers:
            a = layer.self_attn
            k_bias = a.k_proj.bias  # whisper's k_proj has none
            k_bias = torch.zeros_like(a.q_proj.bias) if k_bias is None else k_bias
            self.qkv.append((torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]),
                             torch.cat([a.q_proj.bias, k_bias, a.v_proj.bias])))

    @classmethod
    def of(cls, encoder: torch.nn.Module) -> Optional["_WhisperStack"]:
        needed = ("conv1", "conv2", "embed_positions", "layers", "layer_norm")
        if not all(hasattr(encoder, n) for n in needed) or encoder.training:
            return None
        attn = ("q_proj", "k_proj", "v_proj", "out_proj", "num_heads", "scaling")
        if not all(hasattr(layer.self_attn, n) for layer in encoder.layers for n in attn):
            return None
        with torch.no_grad():
            return cls(encoder)

    def fits(self, mel: torch.Tensor) -> bool:
        # otherwise let transformers raise its own message about the input length
        return mel.shape[-1] == 2 * self.enc.embed_positions.weight.shape[0]

    def __call__(self, mel: torch.Tensor, rows: Optional[tuple]) -> torch.Tensor:
        enc = self.enc
        x = self._front(mel).permute(0, 2, 1)
        h = x + enc.embed_positions.weight[:x.shape[1]]
        lo, hi = (0, h.shape[1]) if rows is None else rows
        states = [h[:, lo:hi]]
        last = len(enc.layers) - 1
        for i, layer in enumerate(enc.layers):
            h = self._layer(i, layer, h, (lo, hi) if i == last else None)
            states.append(h if i == last else h[:, lo:hi])
        states[-1] = enc.layer_norm(h)
        return torch.stack(states, dim=2)

    def _linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                gelu: bool = False) -> torch.Tensor:
        """F.linear (then exact GELU), through oneDNN when it is there."""
        if self.onednn:
            return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu" if gelu else "none",
                                                      [], "none" if gelu else "")
        y = F.linear(x, w, b)
        return F.gelu(y) if gelu else y

    def _convs(self, mel: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.enc.conv2(F.gelu(self.enc.conv1(mel))))

    def _front(self, mel: torch.Tensor) -> torch.Tensor:
        """The two convolutions, (B, 80, 2N) -> (B, D, N), skipping the silent tail.

        The zero padding of a short clip gives identical log-mel columns from some column
        on, so every encoder frame whose receptive field (mel columns 2i-2..2i+2) lies in
        that tail is the same vector; it is computed once. Only the last frame (it sees
        the convolution's own zero padding) is computed from the window's end.
        """
        n_mel = mel.shape[-1]
        same = (mel == mel[..., -1:]).all(dim=1).all(dim=0)  # (2N,) column == last column
        tail = n_mel - int(torch.flip(same, (0,)).int().cumprod(0).sum())  # first of the run
        cut = (tail + 1) // 2 * 2 + _TAIL_MARGIN  # even: a whole number of frames
        if cut + _TAIL_MARGIN >= n_mel:
            return self._convs(mel)
        head = self._convs(mel[..., :cut])         # exact for frames < cut/2 - 1
        end = self._convs(mel[..., -_TAIL_MARGIN:])  # its last frame is the window's last
        k = cut // 2 - 2                           # a tail frame computed exactly
        out = head.new_empty(head.shape[:2] + (n_mel // 2,))
        out[..., :k + 1] = head[..., :k + 1]
        out[..., k + 1:-1] = head[..., k:k + 1]
        out[..., -1] = end[..., -1]
        return out

    def _layer(self, i: int, layer, h: torch.Tensor, rows: Optional[tuple]) -> torch.Tensor:
        a = layer.self_attn
        d = h.shape[-1]
        x = layer.self_attn_layer_norm(h)
        w, b = self.qkv[i]
        if rows is None:
            q, k, v = self._linear(x, w, b).split(d, dim=-1)
            res = h
        else:  # keys and values over the whole window, queries on the kept rows
            k, v = self._linear(x, w[d:], b[d:]).split(d, dim=-1)
            q = self._linear(x[:, rows[0]:rows[1]], w[:d], b[:d])
            res = h[:, rows[0]:rows[1]]

        def heads(t):  # (B, T, D) -> (B, heads, T, D / heads)
            return t.unflatten(-1, (a.num_heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(q * a.scaling), heads(k), heads(v), scale=1.0)
        h = res + self._linear(out.transpose(1, 2).flatten(2), a.out_proj.weight,
                               a.out_proj.bias)
        x = layer.final_layer_norm(h)
        if self.onednn and _is_exact_gelu(layer.activation_fn):
            x = self._linear(x, layer.fc1.weight, layer.fc1.bias, gelu=True)
        else:
            x = layer.activation_fn(self._linear(x, layer.fc1.weight, layer.fc1.bias))
        h = h + self._linear(x, layer.fc2.weight, layer.fc2.bias)
        if h.dtype == torch.float16:  # transformers' overflow guard
            big = torch.finfo(h.dtype).max - 1000
            h = h.clamp(-big, big)
        return h


@torch.inference_mode()
def stacked_hidden_states(encode: EncoderFn, wave: torch.Tensor, window_batch: int = 4,
                          check_interrupt: Optional[Callable] = None) -> torch.Tensor:
    """(n_samples,) float32 16 kHz -> (n_samples // 320, L+1, D) float32 on CPU."""
    plan = window_plan(wave.shape[0])
    feats = input_features(wave.float().cpu(), plan)
    takes_rows = getattr(encode, "takes_rows", False)
    parts = []
    for b in range(0, len(plan), window_batch):
        if check_interrupt is not None:
            check_interrupt()
        windows = plan[b:b + window_batch]
        # the encoder frames any window of this batch keeps, relative to its start
        lo = min(keep_from - start for start, keep_from, _ in windows)
        hi = max(keep_to - start for start, _, keep_to in windows)
        if takes_rows:
            hs = encode(feats[b:b + window_batch], rows=(lo, hi)).float().cpu()
        else:
            hs, lo = encode(feats[b:b + window_batch]).float().cpu(), 0
        for j, (start, keep_from, keep_to) in enumerate(windows):
            parts.append(hs[j, keep_from - start - lo:keep_to - start - lo])
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)


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
    win = padded.index_select(0, idx.reshape(-1))       # (T*10, L+1, D); 5x faster than [idx]
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
