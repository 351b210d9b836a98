"""Easing curves and the interpolation of expression sets into a per-frame track.

An easing maps the fraction x of a transition (0 at its start, 1 at its end) to the
fraction w of the way from the start set to the target set. All map 0 to 0 and 1 to 1:

* ``linear``       w = x (the reference's only curve)
* ``ease-in``      w = x² (starts slowly)
* ``ease-out``     w = 1 - (1-x)² (ends slowly)
* ``ease-in-out``  w = 3x² - 2x³ (smoothstep: slow at both ends, symmetric about x = ½)
* ``hold``         w = 0 until x = 1, then 1 (a cut at the end of the transition)
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

from ..core.choices import EASINGS
from .errors import ExpressionError
from .expset import ExpressionSet, ExpressionTrack


def check_easing(name: str) -> str:
    if name not in EASINGS:
        raise ExpressionError(f"unknown easing {name!r}; use one of {', '.join(EASINGS)}")
    return name


def ease(name: str, x: float) -> float:
    """w(x) of easing ``name`` for x in [0, 1]."""
    x = min(max(float(x), 0.0), 1.0)
    if name == "linear":
        return x
    if name == "ease-in":
        return x * x
    if name == "ease-out":
        return 1.0 - (1.0 - x) ** 2
    if name == "ease-in-out":
        return x * x * (3.0 - 2.0 * x)
    if name == "hold":
        return 1.0 if x >= 1.0 else 0.0
    raise ExpressionError(f"unknown easing {name!r}; use one of {', '.join(EASINGS)}")


def interpolate(sets: Sequence[ExpressionSet],
                plan: Sequence[Tuple[int, int, float]]) -> ExpressionTrack:
    """One frame per plan entry (a, b, w): ``lerp(sets[a], sets[b], w)`` in float64, exact
    at w = 0 and w = 1 (torch.lerp), then e and r rounded to float32."""
    if not plan:
        return ExpressionTrack.from_sets([])
    e = torch.stack([s.e for s in sets]).double()
    r = torch.stack([s.r for s in sets]).double()
    st = torch.tensor([[s.s, s.t] for s in sets], dtype=torch.float64)
    a = torch.tensor([p[0] for p in plan])
    b = torch.tensor([p[1] for p in plan])
    w = torch.tensor([float(p[2]) for p in plan], dtype=torch.float64)
    e_out = torch.lerp(e[a], e[b], w[:, None, None])
    r_out = torch.lerp(r[a], r[b], w[:, None])
    st_out = torch.lerp(st[a], st[b], w[:, None])
    return ExpressionTrack(e_out.float(), r_out.float(), st_out[:, 0], st_out[:, 1])
