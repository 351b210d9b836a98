"""JoyVASA's denoiser: a transformer decoder over [previous motions | noisy motions]
that attends to the matching audio frame only.

Tokens: ``feature_proj(cat(prev_motion, x_t)) + position + step embedding`` (125 tokens
for 25 + 100 frames). Memory: ``cat(prev_audio, audio)``. The cross-attention mask is the
diagonal (``align_mask_width=1``), so token i reads audio frame i only. Post-norm
``nn.TransformerDecoder`` with exact GELU and no final norm, then a 2-layer head that
predicts x0 (or the noise) for all tokens.

Positional encoding, two versions (``pe_mode``):
* "prefix": ``h + pe[:, L]``, one row broadcast to every token: upstream before commit
  74290f6 ("fix bug in position encoding"), which the released checkpoint was trained
  with;
* "fixed": ``h + pe[:, :L]``: upstream HEAD.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..core.choices import JOYVASA_PE_MODES as PE_MODES
from ..core.errors import ShapeError
from .config import JoyVASAConfig


def sinusoidal_table(rows: int, dim: int) -> torch.Tensor:
    """(1, rows, dim) float32: pe[p, 2i] = sin(p·w_i), pe[p, 2i+1] = cos(p·w_i),
    w_i = exp(2i·(−ln 10000 / dim)), computed in float32 like the reference."""
    position = torch.arange(0, rows, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe = torch.zeros(rows, dim)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)
    return pe.unsqueeze(0)


def alignment_mask(n_tokens: int, width: int = 1) -> torch.Tensor:
    """(n, n) bool, True = blocked: token i may read memory tokens i-(width-1) .. i+(width-1)."""
    i = torch.arange(n_tokens)
    return (i[None, :] - i[:, None]).abs() > (width - 1)


class PositionalEncoding(nn.Module):
    """Holds the sinusoidal table as buffer ``pe`` (a checkpoint key)."""

    def __init__(self, dim: int, rows: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(rows, dim))


class DenoisingNetwork(nn.Module):
    def __init__(self, cfg: JoyVASAConfig):
        super().__init__()
        d = cfg.feature_dim
        self.cfg = cfg
        self.TE = PositionalEncoding(d, cfg.te_rows)
        self.diff_step_map = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.PE = PositionalEncoding(d, cfg.pe_rows)
        self.feature_proj = nn.Linear(cfg.motion_feat_dim + int(cfg.use_indicator), d)
        layer = nn.TransformerDecoderLayer(d_model=d, nhead=cfg.n_heads,
                                           dim_feedforward=cfg.mlp_ratio * d,
                                           activation="gelu", batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, num_layers=cfg.n_layers)
        if cfg.align_mask_width > 0:
            self.register_buffer("alignment_mask", alignment_mask(cfg.n_tokens, cfg.align_mask_width))
        else:
            self.alignment_mask = None
        self.motion_dec = nn.Sequential(nn.Linear(d, d // 2), nn.GELU(),
                                        nn.Linear(d // 2, cfg.motion_feat_dim))

    def forward(self, x_t: torch.Tensor, audio_feat: torch.Tensor, prev_motion: torch.Tensor,
                prev_audio: torch.Tensor, step: torch.Tensor, pe_mode: str = "prefix",
                indicator=None) -> torch.Tensor:
        """x_t (N,L,D), audio_feat (N,L,d), prev_motion (N,Lp,D), prev_audio (N,Lp,d),
        step (N,) int -> (N, Lp+L, D). ``indicator`` (N,L) only when the net has that channel."""
        if pe_mode not in PE_MODES:
            raise ShapeError(f"positional encoding mode must be one of {PE_MODES}, got {pe_mode!r}")
        step_emb = self.diff_step_map(self.TE.pe[0, step]).unsqueeze(1)     # (N, 1, d)
        tokens = torch.cat([prev_motion, x_t], dim=1)
        if self.cfg.use_indicator:
            n = tokens.shape[0]
            ind = torch.ones(n, x_t.shape[1], device=x_t.device, dtype=x_t.dtype) \
                if indicator is None else indicator.to(x_t.dtype)
            ind = torch.cat([torch.zeros(n, prev_motion.shape[1], device=x_t.device,
                                         dtype=x_t.dtype), ind], dim=1)
            tokens = torch.cat([tokens, ind.unsqueeze(-1)], dim=-1)
        h = self.feature_proj(tokens)
        length = h.shape[1]
        pos = self.PE.pe[:, length] if pe_mode == "prefix" else self.PE.pe[:, :length]
        h = (h + pos) + step_emb
        memory = torch.cat([prev_audio, audio_feat], dim=1)
        out = self.transformer(h, memory, memory_mask=self.alignment_mask)
        return self.motion_dec(out)
