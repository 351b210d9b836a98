"""The diffusion schedule (``diffusion_sched.*`` buffers) and the ancestral step's
coefficients.

The checkpoint stores the five buffers; they are rebuilt here only for a fresh network
(the tiny test configuration), in float32 exactly as the reference computes them.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..core.errors import CheckpointError


def cosine_betas(n_steps: int, s: float = 0.008) -> torch.Tensor:
    x = torch.linspace(0, n_steps, n_steps + 1)
    abar = torch.cos(((x / n_steps) + s) / (1 + s) * math.pi * 0.5) ** 2
    abar = abar / abar[0]
    return torch.clip(1 - (abar[1:] / abar[:-1]), 0.0001, 0.999)


def linear_betas(n_steps: int, beta_1: float = 1e-4, beta_t: float = 0.02) -> torch.Tensor:
    return torch.linspace(beta_1, beta_t, n_steps)


SCHEDULES = {"cosine": cosine_betas, "linear": linear_betas}


class DiffusionSchedule(nn.Module):
    """Buffers indexed by step t = 0..T (index 0 is the clean sample: beta_0 = 0)."""

    def __init__(self, n_steps: int, mode: str = "cosine"):
        super().__init__()
        if mode not in SCHEDULES:
            raise CheckpointError(f"unknown diffusion schedule {mode!r} in the checkpoint "
                                  f"arguments (known: {', '.join(SCHEDULES)})")
        betas = torch.cat([torch.zeros(1), SCHEDULES[mode](n_steps)])
        alphas = 1 - betas
        log_alphas = torch.log(alphas)
        for i in range(1, n_steps + 1):     # sequential float32 sums, as the reference
            log_alphas[i] += log_alphas[i - 1]
        alpha_bars = log_alphas.exp()
        sigmas_inflex = torch.zeros_like(betas)
        for i in range(1, n_steps + 1):
            sigmas_inflex[i] = ((1 - alpha_bars[i - 1]) / (1 - alpha_bars[i])) * betas[i]
        self.n_steps = n_steps
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", alphas)
        self.register_buffer("alpha_bars", alpha_bars)
        self.register_buffer("sigmas_flex", torch.sqrt(betas))
        self.register_buffer("sigmas_inflex", torch.sqrt(sigmas_inflex))

    def step_terms(self, t: int, target: str = "sample") -> tuple:
        """(c0, c1, sigma) of x_{t-1} = c0·x_t + c1·pred + sigma·z for an x0 prediction
        ("sample"), or of x_{t-1} = c0·(x_t − c1·pred) + sigma·z for a noise prediction.
        0-dim float32 tensors, evaluated in the reference's order (posterior std, i.e.
        "flexibility" 0)."""
        alpha, abar, abar_prev = self.alphas[t], self.alpha_bars[t], self.alpha_bars[t - 1]
        if target == "sample":
            c0 = (1 - abar_prev) * torch.sqrt(alpha) / (1 - abar)
            c1 = (1 - alpha) * torch.sqrt(abar_prev) / (1 - abar)
        else:
            c0 = 1 / torch.sqrt(alpha)
            c1 = (1 - alpha) / torch.sqrt(1 - abar)
        return c0, c1, self.sigmas_inflex[t]

    def timesteps(self, steps: int = 0) -> list:
        """The steps a run visits, T down to 1: all of them (0, or ``steps`` >= T: the
        reference), else ``steps`` of them evenly spaced (a faster, coarser run)."""
        if steps <= 0 or steps >= self.n_steps:
            return list(range(self.n_steps, 0, -1))
        picked = torch.linspace(self.n_steps, 1, steps).round().long().tolist()
        return sorted(set(picked), reverse=True)

    def skip_terms(self, t: int, t_prev: int) -> tuple:
        """(c0, c1, sigma) of the posterior q(x_{t_prev} | x_t, x0) for a jump over
        several steps: x_{t_prev} = c0·x_t + c1·x0 + sigma·z (the one-step terms with the
        jump's own alpha = abar_t / abar_{t_prev})."""
        abar, abar_prev = self.alpha_bars[t], self.alpha_bars[t_prev]
        alpha = abar / abar_prev
        c0 = (1 - abar_prev) * torch.sqrt(alpha) / (1 - abar)
        c1 = (1 - alpha) * torch.sqrt(abar_prev) / (1 - abar)
        sigma = torch.sqrt(((1 - abar_prev) / (1 - abar)) * (1 - alpha))
        return c0, c1, sigma

    def predicted_sample(self, x_t: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        """x0 from a noise prediction at step t."""
        abar = self.alpha_bars[t]
        return (x_t - torch.sqrt(1 - abar) * noise) / torch.sqrt(abar)

