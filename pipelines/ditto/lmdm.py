"""Ditto's audio-to-motion denoiser ("LMDM" / MotionDiT), spec ditto.md §3.6.2.

An EDGE-style FiLM transformer: the noisy 80-frame motion window plus the previous
window's last frame (``cond_frame``) are projected to tokens; the per-frame 1103-d
condition goes through a small rotary transformer encoder and becomes the
cross-attention memory (together with two time tokens); FiLM vectors from the
diffusion time and the pooled condition modulate every decoder sub-block.
The network predicts x0 (the clean motion), not noise.

Parameter names equal the released ``lmdm_v0.4_hubert.pth`` (249 keys, stored as
``{'model_state_dict': sd}``) so it loads strictly. The rotary table ``freqs`` is one
persistent buffer that the checkpoint repeats under every layer prefix; each layer
here registers its own copy so those keys exist and load.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LMDMConfig:
    nfeats: int = 265          # motion vector: scale-1 | 3x66 pose bins | t3 | exp63
    seq_len: int = 80          # frames per window
    latent_dim: int = 512
    ff_size: int = 1024
    num_layers: int = 8        # FiLM decoder layers
    num_heads: int = 8
    cond_dim: int = 1103       # hubert 1024 | emo 8 | eye_open 2 | eye_ball 6 | sc 63
    num_cond_layers: int = 2   # condition encoder layers
    time_tokens: int = 2       # time tokens appended to the cross-attention memory


OFFICIAL = LMDMConfig()
TINY = LMDMConfig(latent_dim=32, ff_size=64, num_layers=2, num_heads=2)


def rotary_freqs(dim: int) -> torch.Tensor:
    """Inverse frequencies of the rotary embedding (float32, as the checkpoint stores)."""
    return 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))


class Rotary(nn.Module):
    """Rotary position embedding over the whole token vector (not per head), channels
    rotated in interleaved pairs ``(x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("freqs", rotary_freqs(dim), persistent=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        pos = torch.arange(n, device=x.device, dtype=self.freqs.dtype)
        ang = (pos[:, None] * self.freqs[None, :]).repeat_interleave(2, dim=-1)
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * ang.cos().to(x.dtype) + rotated * ang.sin().to(x.dtype)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Diffusion-time embedding [sin(t f_j), cos(t f_j)], f_j = 10000^(-j/(dim/2-1))."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
    arg = t.reshape(-1, 1).float() * freq[None, :]
    return torch.cat((arg.sin(), arg.cos()), dim=-1)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.dim)


class DenseFiLM(nn.Module):
    """Per-sample (scale, shift) from a vector; applied as ``(1 + scale) * x + shift``."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(nn.Mish(), nn.Linear(dim, dim * 2))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.block(cond)[:, None, :].chunk(2, dim=-1)
        return (scale + 1) * x + shift


def _attention(mha: nn.MultiheadAttention, q, k, v) -> torch.Tensor:
    return mha(q, k, v, need_weights=False)[0]


class CondEncoderLayer(nn.Module):
    """Pre-LN transformer encoder layer; rotary on queries and keys, values unrotated."""

    def __init__(self, cfg: LMDMConfig):
        super().__init__()
        d = cfg.latent_dim
        self.self_attn = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.linear1 = nn.Linear(d, cfg.ff_size)
        self.linear2 = nn.Linear(cfg.ff_size, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.rotary = Rotary(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        qk = self.rotary(h)
        x = x + _attention(self.self_attn, qk, qk, h)
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class FiLMDecoderLayer(nn.Module):
    """Pre-LN decoder layer: self-attention, cross-attention to the condition memory and
    a feed-forward block, each residual modulated by FiLM from the time/cond vector."""

    def __init__(self, cfg: LMDMConfig):
        super().__init__()
        d = cfg.latent_dim
        self.self_attn = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.linear1 = nn.Linear(d, cfg.ff_size)
        self.linear2 = nn.Linear(cfg.ff_size, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.film1 = DenseFiLM(d)
        self.film2 = DenseFiLM(d)
        self.film3 = DenseFiLM(d)
        self.rotary = Rotary(d)

    def forward(self, x, memory, memory_rot, tvec):
        h = self.norm1(x)
        qk = self.rotary(h)
        x = x + self.film1(_attention(self.self_attn, qk, qk, h), tvec)
        q = self.rotary(self.norm2(x))
        x = x + self.film2(_attention(self.multihead_attn, q, memory_rot, memory), tvec)
        f = self.linear2(F.gelu(self.linear1(self.norm3(x))))
        return x + self.film3(f, tvec)


class DecoderStack(nn.Module):
    def __init__(self, cfg: LMDMConfig):
        super().__init__()
        self.stack = nn.ModuleList(FiLMDecoderLayer(cfg) for _ in range(cfg.num_layers))


class MotionDecoder(nn.Module):
    """x0 prediction for a window: ``forward(x, cond_frame, cond, t, keep)``.

    x (B,L,nfeats) noisy motion, cond_frame (B,nfeats) previous frame, cond (B,L,cond_dim),
    t (B,) int64 diffusion steps, keep (B,) bool: False replaces the condition by the
    learned null embeddings (the unconditional branch of classifier-free guidance).
    """

    def __init__(self, cfg: LMDMConfig = OFFICIAL):
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        # learned "no condition" tokens of classifier-free guidance (loaded from the file)
        self.null_cond_embed = nn.Parameter(torch.zeros(1, cfg.seq_len, d))
        self.null_cond_hidden = nn.Parameter(torch.zeros(1, d))
        self.rotary = Rotary(d)
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(d), nn.Linear(d, d * 4), nn.Mish())
        self.to_time_cond = nn.Sequential(nn.Linear(d * 4, d))
        self.to_time_tokens = nn.Sequential(nn.Linear(d * 4, d * cfg.time_tokens))
        self.norm_cond = nn.LayerNorm(d)
        self.input_projection = nn.Linear(cfg.nfeats * 2, d)
        self.cond_encoder = nn.Sequential(*(CondEncoderLayer(cfg) for _ in range(cfg.num_cond_layers)))
        self.cond_projection = nn.Linear(cfg.cond_dim, d)
        self.non_attn_cond_projection = nn.Sequential(
            nn.LayerNorm(d), nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.seqTransDecoder = DecoderStack(cfg)
        self.final_layer = nn.Linear(d, cfg.nfeats)

    # The condition encoding does not depend on x or t, so a sampler computes it once
    # per window and reuses it for every denoising step.
    def encode_condition(self, cond: torch.Tensor):
        """cond (B,L,cond_dim) -> (tokens (B,L,d), pooled hidden (B,d))."""
        tokens = self.cond_encoder(self.cond_projection(cond))
        return tokens, self.non_attn_cond_projection(tokens.mean(dim=-2))

    def denoise(self, x, cond_frame, encoded, t, keep: Optional[torch.Tensor] = None):
        """x0 from an already encoded condition (see :meth:`encode_condition`)."""
        tokens, hidden = encoded
        b = x.shape[0]
        if keep is not None:
            k = keep.reshape(b, 1).to(x.device)
            tokens = torch.where(k[:, :, None], tokens, self.null_cond_embed.to(tokens.dtype))
            hidden = torch.where(k, hidden, self.null_cond_hidden.to(hidden.dtype))
        frame = cond_frame.reshape(b, 1, -1).expand(-1, x.shape[1], -1)
        h = self.input_projection(torch.cat([x, frame], dim=-1))
        t = t.reshape(-1).to(x.device)
        th = self.time_mlp(t.expand(b) if t.numel() == 1 else t)
        tvec = self.to_time_cond(th) + hidden
        ttok = self.to_time_tokens(th).reshape(b, self.cfg.time_tokens, -1)
        memory = self.norm_cond(torch.cat([tokens, ttok], dim=-2))
        memory_rot = self.rotary(memory)  # identical in every layer: rotate once
        for layer in self.seqTransDecoder.stack:
            h = layer(h, memory, memory_rot, tvec)
        return self.final_layer(h)

    def forward(self, x, cond_frame, cond, t, keep: Optional[torch.Tensor] = None):
        return self.denoise(x, cond_frame, self.encode_condition(cond), t, keep)

    def guided(self, x, cond_frame, encoded, t, guidance: float = 2.0) -> torch.Tensor:
        """Classifier-free guided x0: ``x0_u + (x0_c - x0_u) * w``, both branches batched."""
        b = x.shape[0]
        tokens, hidden = encoded
        keep = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)])
        x0 = self.denoise(torch.cat([x, x]), torch.cat([cond_frame, cond_frame]),
                          (torch.cat([tokens, tokens]), torch.cat([hidden, hidden])),
                          t.reshape(-1).expand(b).repeat(2), keep)
        x0_cond, x0_uncond = x0[:b], x0[b:]
        return x0_uncond + (x0_cond - x0_uncond) * guidance


def lmdm_state_dict_from_file(obj: dict) -> dict:
    """The decoder's state dict from the official container ``{'model_state_dict': sd}``
    (a bare state dict is accepted too)."""
    if "model_state_dict" in obj:
        return dict(obj["model_state_dict"])
    return dict(obj)
