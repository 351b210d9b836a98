"""A VAE with ComfyUI's interface (pixels 0..1 NHWC in, unscaled latents out) serves
MuseTalk exactly like the built-in diffusers VAE when both hold the same weights."""
import numpy as np
import torch

from talking_head.pipelines.musetalk import ExternalVAE
from talking_head.pipelines.musetalk.models import TINY_CONFIGS
from talking_head.pipelines.musetalk.latents import decode_latents, encode_latents
from tests.fakes import seeded_init_


class ComfyStyleVAE:
    """What ComfyUI's VAE object offers: encode(IMAGE) -> latents, decode(latents) -> IMAGE."""

    def __init__(self, diffusers_vae):
        self.m = diffusers_vae
        self.calls = 0

    def encode(self, pixels):
        self.calls += 1
        with torch.no_grad():
            return self.m.encode(pixels.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mean

    def decode(self, latents):
        with torch.no_grad():
            return ((self.m.decode(latents).sample + 1) / 2).permute(0, 2, 3, 1)


def test_external_vae_matches_the_builtin_one():
    from diffusers import AutoencoderKL

    vae = seeded_init_(AutoencoderKL(**TINY_CONFIGS["vae"]).eval(), seed=3)
    crops = np.random.default_rng(0).integers(0, 255, (2, 256, 256, 3), dtype=np.uint8)
    host = ComfyStyleVAE(vae)
    ours, theirs = encode_latents(vae, crops), encode_latents(ExternalVAE(host), crops)
    assert host.calls == 1 and ours.shape == (2, 8, 32, 32)
    assert torch.allclose(ours, theirs, atol=1e-5)
    a, b = decode_latents(vae, ours[:, :4]), decode_latents(ExternalVAE(host), ours[:, :4])
    assert (a.int() - b.int()).abs().max() <= 1
