"""ExpressionSet (AdvancedLivePortrait's EXP_DATA) and ExpressionTrack (one set per frame).

An expression set is an *offset* added to a face's motion parameters:

* ``e`` (21,3) float32 tensor: added to the expression (``exp``);
* ``r`` (3,) float32 tensor: degrees added to (pitch, yaw, roll);
* ``s`` number: scale term (the editor multiplies scale by 1+s, a script frame adds s);
* ``t`` number: added to every component of the translation.

Sets are values: arithmetic returns a new set and never changes its operands, so sets
can be cached and shared between nodes. The arithmetic is AdvancedLivePortrait's, field
by field in the same float32 / Python-float operations, so chains of sets round the same
way as the reference.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple

import torch

from .errors import ExpressionError, ExpressionShapeError
from .modes import check_mode

NUM_KP = 21


def _number(name: str, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExpressionShapeError(f"expression set: '{name}' must be a number, "
                                   f"got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ExpressionShapeError(f"expression set: '{name}' is {value}; it must be finite")
    return value


def _tensor(name: str, value, shape: tuple) -> torch.Tensor:
    value = torch.as_tensor(value)
    size = math.prod(shape)
    if value.numel() != size:
        raise ExpressionShapeError(f"expression set: '{name}' has shape {tuple(value.shape)}, "
                                   f"expected {shape}")
    value = value.reshape(shape).to(torch.float32)
    if not bool(torch.isfinite(value).all()):
        raise ExpressionShapeError(f"expression set: '{name}' holds NaN or infinite values")
    return value


@dataclass(frozen=True)
class ExpressionSet:
    e: torch.Tensor
    r: torch.Tensor
    s: float = 0.0
    t: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "e", _tensor("e", self.e, (NUM_KP, 3)))
        object.__setattr__(self, "r", _tensor("r", self.r, (3,)))
        object.__setattr__(self, "s", _number("s", self.s))
        object.__setattr__(self, "t", _number("t", self.t))

    @classmethod
    def zeros(cls) -> "ExpressionSet":
        return cls(torch.zeros(NUM_KP, 3), torch.zeros(3), 0.0, 0.0)

    # field-by-field arithmetic (the reference's add / sub / mul / div)
    def __add__(self, other: "ExpressionSet") -> "ExpressionSet":
        return ExpressionSet(self.e + other.e, self.r + other.r, self.s + other.s, self.t + other.t)

    def __sub__(self, other: "ExpressionSet") -> "ExpressionSet":
        return ExpressionSet(self.e - other.e, self.r - other.r, self.s - other.s, self.t - other.t)

    def __mul__(self, k) -> "ExpressionSet":
        k = _number("multiplier", k)
        return ExpressionSet(self.e * k, self.r * k, self.s * k, self.t * k)

    __rmul__ = __mul__

    def __truediv__(self, k) -> "ExpressionSet":
        k = _number("divisor", k)
        if k == 0:
            raise ExpressionError("an expression set cannot be divided by 0")
        return ExpressionSet(self.e / k, self.r / k, self.s / k, self.t / k)

    def __neg__(self) -> "ExpressionSet":
        return self * -1.0

    def __repr__(self) -> str:
        moved = int((self.e != 0).any(dim=1).sum())
        r = ", ".join(f"{v:.3g}" for v in self.r.tolist())
        return (f"ExpressionSet({moved} keypoints moved, r=({r}) deg, s={self.s:.3g}, "
                f"t={self.t:.3g})")


@dataclass(frozen=True)
class ExpressionTrack:
    """One expression set per frame: e (F,21,3), r (F,3) float32; s, t (F,) float64
    (Python numbers in the reference, so float64 keeps them exact)."""

    e: torch.Tensor
    r: torch.Tensor
    s: torch.Tensor
    t: torch.Tensor

    def __post_init__(self):
        n = int(self.e.shape[0]) if isinstance(self.e, torch.Tensor) and self.e.dim() else -1
        if n < 0:
            raise ExpressionShapeError("expression track: 'e' must be an (F,21,3) tensor")
        for name, shape, dtype in (("e", (n, NUM_KP, 3), torch.float32),
                                   ("r", (n, 3), torch.float32),
                                   ("s", (n,), torch.float64), ("t", (n,), torch.float64)):
            value = torch.as_tensor(getattr(self, name))
            if tuple(value.shape) != shape:
                raise ExpressionShapeError(f"expression track: '{name}' has shape "
                                           f"{tuple(value.shape)}, expected {shape}")
            object.__setattr__(self, name, value.to(dtype))

    def __len__(self) -> int:
        return int(self.e.shape[0])

    @classmethod
    def from_sets(cls, sets: Sequence[ExpressionSet]) -> "ExpressionTrack":
        if not sets:
            return cls(torch.zeros(0, NUM_KP, 3), torch.zeros(0, 3),
                       torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64))
        return cls(torch.stack([x.e for x in sets]), torch.stack([x.r for x in sets]),
                   torch.tensor([x.s for x in sets], dtype=torch.float64),
                   torch.tensor([x.t for x in sets], dtype=torch.float64))

    @classmethod
    def constant(cls, es: ExpressionSet, n: int) -> "ExpressionTrack":
        return cls.from_sets([es] * n)

    def frame(self, i: int) -> ExpressionSet:
        return ExpressionSet(self.e[i], self.r[i], float(self.s[i]), float(self.t[i]))

    def held(self, n: int) -> "ExpressionTrack":
        """Exactly ``n`` frames: cut, or the last set held (a zero track stays zero)."""
        have = len(self)
        if n <= have:
            return ExpressionTrack(self.e[:n], self.r[:n], self.s[:n], self.t[:n])
        if have == 0:
            return ExpressionTrack.constant(ExpressionSet.zeros(), n)
        idx = torch.clamp(torch.arange(n), max=have - 1)
        return ExpressionTrack(self.e[idx], self.r[idx], self.s[idx], self.t[idx])


# ---------------------------------------------------------------------------------------
# the ExpData node: direct keypoint offsets by code


def expdata(pairs: Iterable[Tuple[int, float]], add: Optional[ExpressionSet] = None,
            mode: str = "default") -> ExpressionSet:
    """AdvancedLivePortrait's ExpData node: for each (code, value) pair,
    ``e[code // 10, code % 10] += value * 0.001``, starting from ``add`` (else zeros).

    code = 10·keypoint + axis (axis 0 = x, 1 = y, 2 = z); value in the node's -100…100.
    Only ``e`` changes. A code naming no keypoint/axis is refused (the reference raises
    IndexError); a negative code wraps like a Python index in reference mode only.
    """
    check_mode(mode)
    base = add if add is not None else ExpressionSet.zeros()
    e = base.e.clone()
    for n, pair in enumerate(pairs, 1):
        try:
            code, value = pair
        except (TypeError, ValueError):
            raise ExpressionError(f"ExpData pair {n}: expected (code, value), "
                                  f"got {pair!r}") from None
        if isinstance(code, bool) or not isinstance(code, numbers.Integral):
            raise ExpressionError(f"ExpData pair {n}: code must be an integer "
                                  f"(10*keypoint + axis), got {code!r}")
        value = _number(f"ExpData value {n}", value)
        code = int(code)
        keypoint, axis = int(code / 10), code % 10  # truncation and Python modulo, as the node
        negative_ok = mode == "reference" and keypoint >= -NUM_KP
        if axis >= 3 or keypoint >= NUM_KP or (keypoint < 0 or code < 0) and not negative_ok:
            raise ExpressionError(
                f"ExpData pair {n}: code {code} names keypoint {keypoint}, axis {axis}; a code "
                f"is 10*keypoint + axis with keypoint 0..{NUM_KP - 1} and axis 0 (x), 1 (y) or "
                "2 (z), e.g. 191 = keypoint 19, y")
        e[keypoint, axis] += value * 0.001
    return ExpressionSet(e, base.r, base.s, base.t)
