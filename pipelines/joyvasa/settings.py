"""``JoyVASASettings``: every user choice of a JoyVASA run, in one value.

Defaults reproduce the reference CLI (``inference.py``) except where noted.

* ``cfg_scale`` (2.8): classifier-free guidance on audio. Higher follows the audio more
  strongly (bigger mouth and head motion); 1.0 disables guidance (half the compute). The
  reference's gradio app uses 4.0, its README examples 2.0.
* ``seed`` (0): seeds every random draw (the initial noise and each step's noise). The
  same seed gives the same motion on every device.
* ``pe_mode`` ("prefix"): the denoiser's positional encoding. "prefix" is the code the
  released checkpoint was trained with (upstream before commit 74290f6); "fixed" is
  upstream HEAD, which runs that checkpoint with position information it never saw.
* ``smoothing`` (0.99): exponential smoothing of the head pose (scale, translation,
  pitch/yaw/roll): ``s_i = (1 − k)·v_i + k·s_{i−1}`` on the 25 fps sequence. The reference
  uses k = 0.99 (a time constant of about 4 s, so the head barely moves); 0 turns it off.
* ``expression_smoothing`` (0.0): the same filter on the expression, run forwards and
  backwards so it adds no delay; 0.3–0.6 calms jittery lips and eyes (upstream issue #7).
  The reference does not smooth expression.
* ``region`` ("all"): which parts follow the audio: "all", "expression", "pose", "lips"
  or "eyes". The others stay at the first frame's value, so relative driving keeps the
  portrait's own (e.g. "lips" for lip-sync without head and eye motion, issue #15).
* ``multiplier`` (1.0): scales every generated change from the first frame (0.5 = half
  the motion).
* ``blinks`` (False): add eye blinks (JoyVASA generates none): the eye keypoints' expression
  moves toward closed with a smooth close–open profile (0.1 s closing, 0.2 s opening),
  ``blink_strength`` times a full close, gaps drawn (from ``seed``) uniformly in
  ``blink_gap_s`` seconds; the first blink comes after one gap, every blink ends inside
  the clip.
* ``fps`` (25): output frames per second; the clip has ceil(seconds · fps) frames.
* ``steps`` (0): denoising steps; 0 runs all of the checkpoint's (50, the reference),
  fewer are proportionally faster and coarser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.choices import JOYVASA_REGIONS as REGIONS
from ..core.errors import ShapeError
from .denoiser import PE_MODES
from .sampler import Guidance

REGION_ALIASES = {"exp": "expression", "lip": "lips", "eye": "eyes"}


@dataclass(frozen=True)
class JoyVASASettings:
    cfg_scale: float = 2.8
    seed: int = 0
    pe_mode: str = "prefix"
    smoothing: float = 0.99
    expression_smoothing: float = 0.0
    region: str = "all"
    multiplier: float = 1.0
    blinks: bool = False
    blink_strength: float = 1.0
    blink_gap_s: tuple = (2.0, 5.0)
    fps: float = 25.0
    steps: int = 0

    def __post_init__(self):
        region = REGION_ALIASES.get(self.region, self.region)
        if region not in REGIONS:
            raise ShapeError(f"JoyVASA animation region must be one of {REGIONS}, got {self.region!r}")
        object.__setattr__(self, "region", region)
        if self.pe_mode not in PE_MODES:
            raise ShapeError(f"JoyVASA positional encoding must be one of {PE_MODES}, "
                             f"got {self.pe_mode!r}")
        for name in ("smoothing", "expression_smoothing"):
            v = float(getattr(self, name))
            if not 0.0 <= v < 1.0:
                raise ShapeError(f"JoyVASA {name} must be in [0, 1) (0 = off, 0.99 = the "
                                 f"reference's pose smoothing), got {v}")
        for name in ("cfg_scale", "multiplier", "blink_strength", "fps"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0 or (name == "fps" and v == 0):
                raise ShapeError(f"JoyVASA {name} must be a finite number "
                                 f"{'> 0' if name == 'fps' else '>= 0'}, got {v}")
        lo, hi = (float(v) for v in self.blink_gap_s)
        if not 0 < lo <= hi:
            raise ShapeError(f"JoyVASA blink gaps must be 0 < min <= max seconds, got {self.blink_gap_s}")

    @property
    def guidance(self) -> Guidance:
        return Guidance(float(self.cfg_scale), self.pe_mode, int(self.steps))
