"""DDIM with classifier-free guidance for the LMDM, spec ditto.md §3.6.3.

Numerics follow the reference exactly (golden ``ddim_window``): a 1000-step cosine
schedule built in float64 and cast to float32, time pairs from
``int(linspace(-1, 999, S+1))``, eta = 1, guidance 2, ``clip_denoised=False``.

Noise: Ditto draws the S-1 per-step noises once and reuses them for every window (and
every later call), while the initial noise x_T is fresh per window. :class:`NoiseSource`
keeps those semantics but draws from a ``torch.Generator`` seeded by the caller, so a
render is repeatable; the goldens inject their stored tensors instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
from ..core.errors import ShapeError

NUM_TIMESTEPS = 1000


@dataclass(frozen=True)
class Schedule:
    alphas_cumprod: torch.Tensor          # (1000,) float32
    sqrt_recipm1_alphas_cumprod: torch.Tensor   # sqrt(1/a - 1)
    sqrt_recip1m_alphas_cumprod: torch.Tensor   # sqrt(1/(1-a))


def cosine_schedule(timesteps: int = NUM_TIMESTEPS, s: float = 0.008) -> Schedule:
    steps = timesteps + 1
    x = np.linspace(0, timesteps, steps, dtype=np.float64)
    abar = np.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    abar = abar / abar[0]
    betas = np.clip(1 - (abar[1:] / abar[:-1]), 0, 0.999)
    alphas = 1.0 - torch.from_numpy(betas).float()
    ac = torch.cumprod(alphas, dim=0)
    return Schedule(ac, torch.sqrt(1.0 / ac - 1), torch.sqrt(1.0 / (1 - ac)))


def time_pairs(steps: int, timesteps: int = NUM_TIMESTEPS) -> List[tuple]:
    """[(t, t_next), ...] from T-1 down to -1, truncating like ``tensor.int()``."""
    times = torch.linspace(-1, timesteps - 1, steps + 1).int().tolist()[::-1]
    return list(zip(times[:-1], times[1:]))


@dataclass(frozen=True)
class StepCoefs:
    t: int
    t_next: int
    alpha_next_sqrt: Optional[torch.Tensor] = None   # 0-dim float32, None on the last step
    c: Optional[torch.Tensor] = None
    sigma: Optional[torch.Tensor] = None


def step_coefficients(schedule: Schedule, steps: int, eta: float = 1.0) -> List[StepCoefs]:
    out = []
    ac = schedule.alphas_cumprod
    for t, t_next in time_pairs(steps, len(ac)):
        if t_next < 0:
            out.append(StepCoefs(t, t_next))
            continue
        alpha, alpha_next = ac[t], ac[t_next]
        sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
        # with very few steps float32 rounding can push this a hair below 0 (the reference
        # then returns NaN motion); clamping changes nothing where it is positive
        c = (1 - alpha_next - sigma ** 2).clamp(min=0).sqrt()
        out.append(StepCoefs(t, t_next, alpha_next.sqrt(), c, sigma))
    return out


@dataclass
class NoiseSource:
    """Per-step noises (drawn once, shared by all windows) and per-window x_T.

    Either seeded (``seed``) or injected (``step_noises`` (S-1,L,F) and ``window_x_T``
    (W,L,F), consumed in order). Everything is drawn on the CPU so a seed gives the same
    motion on every device.
    """

    shape: tuple                     # (L, F)
    steps: int
    seed: Optional[int] = 0
    step_noises: Optional[torch.Tensor] = None
    window_x_T: Optional[torch.Tensor] = None
    _gen: Optional[torch.Generator] = field(default=None, init=False, repr=False)
    _window: int = field(default=0, init=False)

    def __post_init__(self):
        if self.step_noises is None or self.window_x_T is None:
            self._gen = torch.Generator().manual_seed(int(self.seed or 0))
        if self.step_noises is None:
            self.step_noises = torch.randn((max(self.steps - 1, 0), 1) + tuple(self.shape),
                                           generator=self._gen)
        self.step_noises = self.step_noises.reshape((-1, 1) + tuple(self.shape))
        if len(self.step_noises) < self.steps - 1:
            raise ShapeError(f"need {self.steps - 1} step noises, got {len(self.step_noises)}")

    def next_x_T(self) -> torch.Tensor:
        w = self._window
        self._window += 1
        if self.window_x_T is not None:
            return self.window_x_T[w].reshape((1,) + tuple(self.shape))
        return torch.randn((1,) + tuple(self.shape), generator=self._gen)


class DDIMSampler:
    """``sample(cond_frame, cond)`` -> one clean motion window (1,L,F)."""

    def __init__(self, model, steps: int = 50, guidance: float = 2.0, eta: float = 1.0,
                 schedule: Optional[Schedule] = None):
        self.model = model
        self.steps = int(steps)
        self.guidance = float(guidance)
        self.schedule = schedule or cosine_schedule()
        self.coefs = step_coefficients(self.schedule, self.steps, eta)

    def _param(self):
        p = next(self.model.parameters())
        return p.device, p.dtype

    @torch.no_grad()
    def sample(self, cond_frame: torch.Tensor, cond: torch.Tensor, noise: NoiseSource,
               trajectory: Optional[list] = None, check=None) -> torch.Tensor:
        """cond_frame (1,F), cond (1,L,C) -> x0 (1,L,F) float32 on the model's device.

        ``trajectory``: if a list, (x fed to step i, guided x0 of step i) are appended.
        ``check()`` runs before every step (a stop request ends sampling within one step).
        """
        device, dtype = self._param()
        cond_frame = torch.as_tensor(cond_frame).to(device, dtype).reshape(1, -1)
        cond = torch.as_tensor(cond).to(device, dtype).reshape((1,) + tuple(cond.shape[-2:]))
        encoded = self.model.encode_condition(cond)
        sched = self.schedule
        x = noise.next_x_T().to(device, dtype)
        i_noise = 0
        for co in self.coefs:
            if check is not None:
                check()
            t = torch.tensor([co.t], dtype=torch.long, device=device)
            x0 = self.model.guided(x, cond_frame, encoded, t, self.guidance).float()
            if trajectory is not None:
                trajectory.append((x.float().cpu(), x0.cpu()))
            if co.t_next < 0:
                x = x0
                continue
            eps = sched.sqrt_recip1m_alphas_cumprod[co.t] * x.float() \
                - x0 / sched.sqrt_recipm1_alphas_cumprod[co.t]
            z = noise.step_noises[i_noise].to(device)
            i_noise += 1
            x = (x0 * co.alpha_next_sqrt.to(device) + co.c.to(device) * eps
                 + co.sigma.to(device) * z).to(dtype)
        return x.float()
