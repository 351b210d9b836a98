"""The Expression Editor's twelve sliders (AdvancedLivePortrait ``calc_fe``) as data.

Each expression slider adds ``coefficient x value`` to single entries ``e[keypoint, axis]``
of the expression offset, in the reference's order, which :func:`apply_sliders` spells out
(it matters only for float32 rounding of entries two sliders share). Three rotate sliders and two side effects
move the head: aaa tilts it (pitch -= 0.05·aaa), wink rolls and turns it (roll and yaw
-= 0.1·wink). The yaw slider is negated (positive rotate_yaw turns the head the other way
than a positive yaw angle). pupil_y also half-closes or opens the lids: blink acts with
``blink - pupil_y / 2``. Nothing here clamps: :data:`SLIDER_RANGES` are the node's limits.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Tuple

import torch

from .errors import ExpressionError

X, Y, Z = 0, 1, 2

# slider -> ((keypoint, axis, coefficient), ...), in the reference's order of application
EFFECTS = {
    "smile": ((20, Y, -0.01), (14, Y, -0.02), (17, Y, 0.0065), (17, Z, 0.003),
              (13, Y, -0.00275), (16, Y, -0.00275), (3, Y, -0.0035), (7, Y, -0.0035)),
    "aaa": ((19, Y, 0.001), (19, Z, 0.0001), (17, Y, -0.0001)),
    "eee": ((20, Z, -0.001), (20, Y, -0.001), (14, Y, -0.001)),
    "woo": ((14, Y, 0.001), (3, Y, -0.0005), (7, Y, -0.0005), (17, Z, -0.0005)),
    "wink": ((11, Y, 0.001), (13, Y, -0.0003), (17, X, 0.0003), (17, Y, 0.0003), (3, Y, -0.0003)),
    "pupil_x>0": ((11, X, 0.0007), (15, X, 0.001)),
    "pupil_x<=0": ((11, X, 0.001), (15, X, 0.0007)),
    "pupil_y": ((11, Y, -0.001), (15, Y, -0.001)),
    "blink": ((11, Y, -0.001), (13, Y, 0.0003), (15, Y, -0.001), (16, Y, 0.0003),
              (1, Y, -0.00025), (2, Y, 0.00025)),
    "eyebrow>0": ((1, Y, 0.001), (2, Y, -0.001)),
    "eyebrow<=0": ((1, X, -0.001), (2, X, 0.001), (1, Y, 0.0003), (2, Y, -0.0003)),
}
AAA_PITCH = 0.05   # pitch -= AAA_PITCH * aaa
WINK_TURN = 0.1    # roll -= WINK_TURN * wink; yaw -= WINK_TURN * wink

# node limits: name -> (min, max, step, default); the maths never clamps
SLIDER_RANGES = {
    "rotate_pitch": (-20.0, 20.0, 0.5, 0.0), "rotate_yaw": (-20.0, 20.0, 0.5, 0.0),
    "rotate_roll": (-20.0, 20.0, 0.5, 0.0), "blink": (-20.0, 5.0, 0.5, 0.0),
    "eyebrow": (-10.0, 15.0, 0.5, 0.0), "wink": (0.0, 25.0, 0.5, 0.0),
    "pupil_x": (-15.0, 15.0, 0.5, 0.0), "pupil_y": (-15.0, 15.0, 0.5, 0.0),
    "aaa": (-30.0, 120.0, 1.0, 0.0), "eee": (-20.0, 15.0, 0.2, 0.0),
    "woo": (-20.0, 15.0, 0.2, 0.0), "smile": (-0.3, 1.3, 0.01, 0.0),
}


@dataclass(frozen=True)
class Sliders:
    """The editor's slider values (defaults: all 0, i.e. no change)."""

    rotate_pitch: float = 0.0
    rotate_yaw: float = 0.0
    rotate_roll: float = 0.0
    blink: float = 0.0
    eyebrow: float = 0.0
    wink: float = 0.0
    pupil_x: float = 0.0
    pupil_y: float = 0.0
    aaa: float = 0.0
    eee: float = 0.0
    woo: float = 0.0
    smile: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ExpressionError(f"slider '{f.name}' must be a finite number, got {v!r}")
            object.__setattr__(self, f.name, float(v))

    @classmethod
    def from_mapping(cls, values: Mapping) -> "Sliders":
        """From {name: value}; unknown names are refused (a typo would silently do nothing)."""
        if not isinstance(values, Mapping):
            raise ExpressionError(f"sliders must be a mapping of name -> number, got "
                                  f"{type(values).__name__}")
        unknown = sorted(set(values) - set(SLIDER_RANGES))
        if unknown:
            raise ExpressionError(f"unknown slider(s) {unknown}; the sliders are "
                                  f"{', '.join(SLIDER_RANGES)}")
        return cls(**values)


def _add(e: torch.Tensor, effects: Tuple, value: float) -> None:
    for k, a, c in effects:
        e[k, a] += value * c  # Python-float product added into the float32 entry


def apply_sliders(e: torch.Tensor, rotation: list, sliders: Sliders) -> tuple:
    """``calc_fe``: the sliders added to the expression offset ``e`` (21,3) and to the
    rotation accumulators ``rotation`` = [pitch, yaw, roll] (Python floats or float32
    tensors, degrees; yaw already negated). Returns new (e, [pitch, yaw, roll])."""
    e = e.clone()
    pitch, yaw, roll = rotation
    v = sliders
    _add(e, EFFECTS["smile"], v.smile)
    _add(e, EFFECTS["aaa"], v.aaa)
    pitch = pitch - v.aaa * AAA_PITCH
    _add(e, EFFECTS["eee"], v.eee)
    _add(e, EFFECTS["woo"], v.woo)
    _add(e, EFFECTS["wink"], v.wink)
    roll = roll - v.wink * WINK_TURN
    yaw = yaw - v.wink * WINK_TURN
    _add(e, EFFECTS["pupil_x>0" if v.pupil_x > 0 else "pupil_x<=0"], v.pupil_x)
    _add(e, EFFECTS["pupil_y"], v.pupil_y)
    _add(e, EFFECTS["blink"], v.blink - v.pupil_y / 2.0)
    _add(e, EFFECTS["eyebrow>0" if v.eyebrow > 0 else "eyebrow<=0"], v.eyebrow)
    return e, [pitch, yaw, roll]

