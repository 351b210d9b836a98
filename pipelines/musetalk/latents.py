"""VAE and UNet glue of the single-step generator (spec §1.3).

* Encode: 256x256 RGB crop -> [0,1] -> a copy with rows 128..255 zeroed (the mouth half
  the UNet must fill in) and the unmasked reference -> [-1,1] -> VAE -> latents x 0.18215,
  concatenated ``[masked, reference]`` -> (B, 8, 32, 32).
* Latent sampling: the reference inference calls ``latent_dist.sample()`` on the global
  RNG (bug B7) while training used the mode. We use the **mean** by default: it is what
  the UNet saw in training, and a cached avatar then gives identical results on every
  run. A ``seed`` (torch.Generator) or explicit ``noise`` reproduces sampling (the
  golden case injects the reference's stored noise).
* UNet: one forward at timestep 0 with ``encoder_hidden_states = audio + PE``.
* Decode: ``latents * (1/0.18215)`` -> VAE decoder -> (x/2 + 0.5) clamped -> x255,
  round-half-even -> uint8 RGB (the reference then flips to BGR; we stay RGB).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .audio import positional_encoding

SCALING_FACTOR = 0.18215
HALF = 128  # rows from here down are masked in the 256 crop


def _param(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters())


def vae_inputs(crops_u8) -> tuple:
    """(B,256,256,3) uint8 RGB -> (masked, reference), each (B,3,256,256) float32 in [-1,1]."""
    # contiguous NCHW: a permuted (channels-last) input makes torch pick CPU GroupNorm
    # kernels that lose ~1e-3 relative accuracy on the flat masked half
    x = torch.as_tensor(np.asarray(crops_u8)).permute(0, 3, 1, 2).contiguous().float() / 255.0
    masked = x.clone()
    masked[:, :, HALF:, :] = 0.0
    return (masked - 0.5) / 0.5, (x - 0.5) / 0.5


@torch.inference_mode()
def encode_moments(vae: torch.nn.Module, x: torch.Tensor) -> tuple:
    """(mean, std) of the VAE posterior, float32 on CPU."""
    p = _param(vae)
    dist = vae.encode(x.to(p.device, p.dtype)).latent_dist
    return dist.mean.float().cpu(), dist.std.float().cpu()


def encode_latents(vae: torch.nn.Module, crops_u8, noise: Optional[tuple] = None,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B,256,256,3) uint8 RGB crops -> (B,8,32,32) float32 CPU UNet inputs.

    ``noise``: (noise_masked, noise_ref), each (B,4,32,32), for sampled latents;
    ``generator``: draw that noise per frame (masked then reference), so the result does
    not depend on how frames are batched. Neither: the posterior mean.
    """
    masked, ref = vae_inputs(crops_u8)
    b = masked.shape[0]
    mean, std = encode_moments(vae, torch.cat([masked, ref]))
    if noise is None and generator is not None:
        draws = torch.randn((b, 2) + tuple(mean.shape[1:]), generator=generator)
        noise = (draws[:, 0], draws[:, 1])
    if noise is not None:
        sample = mean + std * torch.cat([noise[0].float().cpu(), noise[1].float().cpu()])
    else:
        sample = mean
    lat = torch.tensor(SCALING_FACTOR, dtype=torch.float32) * sample
    return torch.cat([lat[:b], lat[b:]], dim=1)


def unet_context(audio: torch.Tensor) -> torch.Tensor:
    """(B, tokens, D) audio windows + MuseTalk's positional encoding, float32."""
    audio = audio.float()
    return audio + positional_encoding(audio.shape[1], audio.shape[2]).to(audio.device)[None]


@torch.inference_mode()
def unet_step(unet: torch.nn.Module, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """One UNet forward at t=0: (B,8,32,32), (B,tokens,D) -> (B,4,32,32) in the net's dtype."""
    p = _param(unet)
    ctx = unet_context(audio.cpu()).to(p.device, p.dtype)
    t = torch.zeros(1, dtype=torch.long, device=p.device)
    return unet(latents.to(p.device, p.dtype), t, encoder_hidden_states=ctx).sample


@torch.inference_mode()
def decode_float(vae: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents -> decoder output in [-1,1]-ish, before clamping (float32)."""
    p = _param(vae)
    z = latents.float() * torch.tensor(1.0 / SCALING_FACTOR, dtype=torch.float32)
    return vae.decode(z.to(p.device, p.dtype)).sample.float()


def to_uint8(decoded: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) decoder output -> (B,H,W,3) uint8 RGB on CPU."""
    img = (decoded.cpu() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    return (img * 255).round().to(torch.uint8)


def decode_latents(vae: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    return to_uint8(decode_float(vae, latents))


class ExternalVAE(torch.nn.Module):
    """A VAE with ComfyUI's interface (``encode(pixels (B,H,W,3) 0..1) -> unscaled latents``,
    ``decode(latents) -> (B,H,W,3) 0..1``) behind the diffusers calls used above, so a VAE
    the host already loaded (sd-vae-ft-mse as ``vae-ft-mse-840000-ema-pruned``) can serve
    MuseTalk. Its encode is taken as the posterior mean (std 0): MuseTalk's default."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae
        # device/dtype carrier for ``_param`` (the wrapped object manages its own placement)
        self.register_parameter("_anchor", torch.nn.Parameter(torch.zeros(1), requires_grad=False))

    def encode(self, x: torch.Tensor):
        from types import SimpleNamespace

        z = torch.as_tensor(self.vae.encode(((x.float().cpu() + 1) / 2).permute(0, 2, 3, 1))).float()
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=z, std=torch.zeros_like(z)))

    def decode(self, z: torch.Tensor):
        from types import SimpleNamespace

        img = torch.as_tensor(self.vae.decode(z.float().cpu())).float()
        return SimpleNamespace(sample=img.permute(0, 3, 1, 2) * 2 - 1)
