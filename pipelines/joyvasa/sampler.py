"""Ancestral DDPM sampling of one window, with classifier-free guidance on audio.

For t = T..1 (all T steps of the checkpoint's schedule, as the reference):
``x_{t-1} = c0·x_t + c1·x̂0 + σ_t·z`` with the posterior coefficients of
:meth:`DiffusionSchedule.step_terms`, ``x̂0`` the guided prediction, and fresh noise z at
every step except the last (t = 1). With ``Guidance.steps`` below T the run visits that
many evenly spaced steps and jumps between them with the posterior of the whole jump
(:meth:`DiffusionSchedule.skip_terms`): fewer network calls, coarser motion.

Noise comes from a :class:`NoiseSource`: drawn from a seeded ``torch.Generator`` (on the
CPU, so a seed gives the same motion on every device) or served from given tensors (the
golden tests inject the reference's own draws).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..core.errors import ShapeError
from ..core.runtime import CPU, RunContext
from .denoiser import PE_MODES


class NoiseSource:
    """The sampler's random draws: ``initial`` (x_T) and ``step`` (z of one step).

    seed: draw from ``torch.Generator().manual_seed(seed)``. x_T / z: given tensors;
    ``z`` is (K, ...) consumed row by row, in order, across windows.
    """

    def __init__(self, seed: Optional[int] = 0, x_T: Optional[torch.Tensor] = None,
                 z: Optional[torch.Tensor] = None):
        self.generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        self.x_T = x_T
        self.z = z
        self.used = 0

    def _draw(self, shape, what: str) -> torch.Tensor:
        if self.generator is None:
            raise ShapeError(f"no {what} noise left and no seed to draw more")
        return torch.randn(tuple(shape), generator=self.generator)

    def initial(self, shape) -> torch.Tensor:
        if self.x_T is not None:
            return self._checked(self.x_T, shape, "x_T")
        return self._draw(shape, "initial")

    def step(self, shape) -> torch.Tensor:
        if self.z is not None and self.used < len(self.z):
            z = self.z[self.used]
            self.used += 1
            return self._checked(z, shape, "step")
        return self._draw(shape, "step")

    @staticmethod
    def _checked(t: torch.Tensor, shape, what: str) -> torch.Tensor:
        if tuple(t.shape) != tuple(shape):
            raise ShapeError(f"injected {what} noise has shape {tuple(t.shape)}, "
                             f"the sampler needs {tuple(shape)}")
        return t.float().cpu()


@dataclass(frozen=True)
class Guidance:
    """cfg_scale: classifier-free guidance on audio (2.8 = the reference CLI; 1 = none).
    pe_mode: "prefix" (what the released checkpoint was trained with) or "fixed"."""

    cfg_scale: float = 2.8
    pe_mode: str = "prefix"
    steps: int = 0   # denoising steps; 0 = all of the checkpoint's (the reference)

    def __post_init__(self):
        if int(self.steps) < 0:
            raise ShapeError(f"denoising steps must be >= 0 (0 = the checkpoint's), got {self.steps}")
        if self.pe_mode not in PE_MODES:
            raise ShapeError(f"positional encoding mode must be one of {PE_MODES}, "
                             f"got {self.pe_mode!r}")


@torch.inference_mode()
def sample_window(model, audio_feat: torch.Tensor, prev_motion: Optional[torch.Tensor],
                  prev_audio: Optional[torch.Tensor], x_T: torch.Tensor, noise: NoiseSource,
                  guidance: Guidance = Guidance(), ctx: RunContext = CPU,
                  trajectory: Optional[list] = None) -> torch.Tensor:
    """One window: audio_feat (N, L, d) -> motion (N, L, D) (normalised coefficients).

    prev_motion / prev_audio: (N, Lp, ·) of the previous window, None for the learned start
    features. x_T: (N, L, D). ``trajectory`` (a list) receives x_t for t = T..0.
    """
    n = audio_feat.shape[0]
    dev = ctx.device
    if prev_motion is None:
        prev_motion = model.start_motion_feat.expand(n, -1, -1)
    if prev_audio is None:
        prev_audio = model.start_audio_feat.expand(n, -1, -1)
    sched = model.diffusion_sched
    x = x_T.to(dev, torch.float32)
    visits = sched.timesteps(int(guidance.steps))
    total = len(visits)
    if trajectory is not None:
        trajectory.append(x.cpu())
    for i, t in enumerate(visits):
        ctx.check()
        t_prev = visits[i + 1] if i + 1 < total else 0
        z = noise.step(x.shape).to(dev) if t_prev > 0 else None
        with ctx.autocast():
            pred = model.guided_prediction(x, audio_feat, prev_motion, prev_audio, t,
                                           guidance.cfg_scale, guidance.pe_mode).float()
        if t_prev == t - 1:   # one step: the reference's own terms and order
            c0, c1, sigma = sched.step_terms(t, model.cfg.target)
            x = c0 * x + c1 * pred if model.cfg.target == "sample" else c0 * (x - c1 * pred)
        else:
            x0 = pred if model.cfg.target == "sample" else sched.predicted_sample(x, pred, t)
            c0, c1, sigma = sched.skip_terms(t, t_prev)
            x = c0 * x + c1 * x0
        if z is not None:
            x = x + sigma * z
        if trajectory is not None:
            trajectory.append(x.cpu())
        ctx.report(i + 1, total)
    return x
