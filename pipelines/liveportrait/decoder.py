"""LivePortrait SPADE decoder G (../shared/spec/liveportrait.md §1.6; Ditto §3.11).

The warped 2-D feature (B,256,64,64) is both the input and the SPADE segmentation map of
every block; six 512-channel residual blocks at 64², two upsampling blocks (128², 256²)
and a 3x3 conv + PixelShuffle(2) + sigmoid give a (B,3,512,512) image in (0,1).

The official checkpoint stores conv_0/conv_1/conv_s of every residual block as
spectral-norm triplets (``weight_orig``, ``weight_u``, ``weight_v``). In eval mode the
effective weight is ``weight_orig / sigma`` with ``sigma = u . (W v)``; it never changes,
so :func:`fold_spectral_norm` computes it once at load time and this network holds plain
convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DecoderConfig:
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64
    upscale: int = 2
    num_middle: int = 6
    spade_hidden: int = 128

    @property
    def in_channels(self) -> int:
        return min(self.max_features, self.block_expansion * 2 ** self.num_down_blocks)


TINY_DECODER = DecoderConfig(block_expansion=4, out_channels=4, num_middle=1, spade_hidden=4)


def conv3x3_upsampled(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                      factor: int) -> torch.Tensor:
    """``conv2d(nearest_upsample(x, factor), weight, bias, padding=1)`` computed at x's
    resolution. Output pixel (s*i + a, s*j + b) reads, through kernel row dy in (-1,0,1),
    the low-resolution row i + floor((a + dy) / s): only 1 or 2 distinct rows (and
    columns). Folding the 3x3 kernel onto those taps gives the same result with 2.25x
    (factor 2) to 4x (factor 4) fewer multiply-adds, and no upsampled copy of x."""
    s = factor
    b_, _, h, w = x.shape
    rows_out = []
    for a in range(s):
        r_off = [(a + dy) // s for dy in (-1, 0, 1)]
        r_taps = sorted(set(r_off))
        w_rows = torch.stack([weight[:, :, [k for k in range(3) if r_off[k] == r]].sum(2)
                              for r in r_taps], dim=2)
        cols_out = []
        for b in range(s):
            c_off = [(b + dx) // s for dx in (-1, 0, 1)]
            c_taps = sorted(set(c_off))
            kernel = torch.stack([w_rows[..., [k for k in range(3) if c_off[k] == c]].sum(3)
                                  for c in c_taps], dim=3)
            pad = (-c_taps[0], c_taps[-1], -r_taps[0], r_taps[-1])  # left, right, top, bottom
            cols_out.append(F.conv2d(F.pad(x, pad), kernel, bias))
        rows_out.append(torch.stack(cols_out, dim=-1))  # (B,C,H,W,s_b)
    out = torch.stack(rows_out, dim=3)  # (B,C,H,s_a,W,s_b)
    return out.reshape(b_, -1, h * s, w * s)


class SPADE(nn.Module):
    """InstanceNorm(x) * (1 + gamma(seg)) + beta(seg), seg resized (nearest) to x."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        factor = x.shape[-1] // seg.shape[-1]
        if seg.shape[-2:] == x.shape[-2:]:
            actv = self.mlp_shared(seg)
        elif factor > 1 and tuple(x.shape[-2:]) == (seg.shape[-2] * factor, seg.shape[-1] * factor):
            conv = self.mlp_shared[0]
            actv = F.relu(conv3x3_upsampled(seg, conv.weight, conv.bias, factor))
        else:
            actv = self.mlp_shared(F.interpolate(seg, size=x.shape[-2:], mode="nearest"))
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """SPADE -> LeakyReLU(0.2) -> conv_0 -> SPADE -> LeakyReLU -> conv_1, plus a shortcut
    (SPADE -> 1x1 conv without bias when the channel count changes)."""

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int):
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = nn.Conv2d(fin, fmid, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmid, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(fmid, label_nc, hidden)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_nc, hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    """``forward(feature (B,256,64,64))`` -> (B,3,512,512) in (0,1)."""

    def __init__(self, cfg: DecoderConfig = DecoderConfig()):
        super().__init__()
        self.cfg = cfg
        ic, hid = cfg.in_channels, cfg.spade_hidden
        self.fc = nn.Conv2d(ic, 2 * ic, 3, padding=1)
        for i in range(cfg.num_middle):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * ic, 2 * ic, ic, hid))
        self.up_0 = SPADEResnetBlock(2 * ic, ic, ic, hid)
        self.up_1 = SPADEResnetBlock(ic, cfg.out_channels, ic, hid)
        self.conv_img = nn.Sequential(
            nn.Conv2d(cfg.out_channels, 3 * cfg.upscale ** 2, 3, padding=1),
            nn.PixelShuffle(cfg.upscale))

    def spectral_norm_convs(self) -> list:
        """Names of the convs that the official checkpoint stores as spectral-norm triplets."""
        names = []
        for block in [f"G_middle_{i}" for i in range(self.cfg.num_middle)] + ["up_0", "up_1"]:
            names += [f"{block}.conv_0", f"{block}.conv_1"]
            if getattr(self, block).learned_shortcut:
                names.append(f"{block}.conv_s")
        return names

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        seg = feature
        x = self.fc(feature)
        for i in range(self.cfg.num_middle):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2, mode="nearest"), seg)
        x = self.up_1(F.interpolate(x, scale_factor=2, mode="nearest"), seg)
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.sigmoid(x)


def official_key_shapes(decoder: SPADEDecoder) -> dict:
    """{key: shape} of the official checkpoint: every spectral-norm ``<conv>.weight`` is
    stored as ``weight_orig`` (same shape), ``weight_u`` (out,) and ``weight_v`` (in*kh*kw,)."""
    sn = set(decoder.spectral_norm_convs())
    out = {}
    for key, value in decoder.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in sn and leaf == "weight":
            shape = tuple(value.shape)
            out[f"{prefix}.weight_orig"] = shape
            out[f"{prefix}.weight_u"] = (shape[0],)
            out[f"{prefix}.weight_v"] = (int(torch.Size(shape[1:]).numel()),)
        else:
            out[key] = tuple(value.shape)
    return out


def fold_spectral_norm(sd: dict) -> dict:
    """Replace every ``weight_orig/weight_u/weight_v`` triplet by the effective ``weight``
    = weight_orig / (u . (weight_orig.reshape(out,-1) @ v)), computed once in fp32 the way
    PyTorch's eval-mode spectral-norm hook computes it at every call."""
    out = {}
    for key, value in sd.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("weight_u", "weight_v"):
            continue
        if leaf == "weight_orig":
            stem = prefix + "." if prefix else ""
            w = value.float()
            u, v = sd[stem + "weight_u"].float(), sd[stem + "weight_v"].float()
            sigma = torch.dot(u, torch.mv(w.reshape(w.shape[0], -1), v))
            out[stem + "weight"] = w / sigma
        else:
            out[key] = value
    return out
