"""JSON keyframes: the same animation as a command script, written as values at frames.

A keyframe list is JSON (text or the parsed list)::

    [{"frame": 0,  "preset": "smile", "ease": "ease-in-out"},
     {"frame": 30, "sliders": {"aaa": 40}},
     {"frame": 45, "set": 2, "amount": 0.5},
     {"frame": 60, "preset": "wink", "sliders": {"blink": -4}},
     {"frame": 90}]

Each keyframe fixes the expression offset at its ``frame`` (a whole number >= 0):

* its value is a base plus sliders, times ``amount`` (default 1, like LoadExpData's
  ratio). The base is at most one of ``"preset"`` (a preset name, see presets.py),
  ``"set"`` (an index into the chain as in a script: 0 = none, k = the k-th set, -1 =
  the last) or ``"expression"`` (an inline {"e", "r", "s", "t"} as in a preset file);
  none means the source's own expression. ``"sliders"`` ({slider: value}, the Expression
  Editor's sliders) are added to the base.
* ``"ease"`` is the curve from this keyframe to the next one (default "linear"; see
  ramps.py). Frame f between keyframes a and b shows ``lerp(a, b, w((f - fa)/(fb - fa)))``,
  so each keyframe's own frame shows exactly its value.

Keyframes may be listed in any order; two at one frame are an error. When no keyframe is
at frame 0 the animation starts from the source's own expression at frame 0 (as a script
does). The length is the last keyframe's frame + 1; later frames hold the last value.
Unknown keys are refused (a misspelt "sliders" would otherwise do nothing).
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

from .editor import build_expression
from .errors import ExpressionError, KeyframeError
from .expset import ExpressionSet, ExpressionTrack
from .modes import MAX_FRAMES
from .presets import Preset, list_presets, load_preset, preset_from_dict
from .ramps import EASINGS, ease, interpolate
from .script import NoSuchSet, chain_target
from .sliders import Sliders

KEYS = ("frame", "preset", "set", "expression", "sliders", "amount", "ease")
BASES = ("preset", "set", "expression")
MAX_TEXT = 1024 * 1024


@dataclass(frozen=True)
class Keyframe:
    frame: int
    value: ExpressionSet
    ease: str = "linear"


@dataclass(frozen=True)
class Keyframes:
    keyframes: tuple  # sorted by frame; the first is at frame 0

    @property
    def length(self) -> int:
        return self.keyframes[-1].frame + 1

    def expand(self, n_frames: int) -> ExpressionTrack:
        """The state of each of ``n_frames`` frames (cut, or the last value held)."""
        n_frames = int(n_frames)
        if n_frames < 0 or n_frames > MAX_FRAMES:
            raise KeyframeError(f"cannot expand keyframes to {n_frames} frames (0..{MAX_FRAMES})")
        keys = self.keyframes
        plan = []
        for k in range(len(keys) - 1):
            a, b = keys[k], keys[k + 1]
            span = b.frame - a.frame
            plan += [(k, k + 1, ease(a.ease, i / span)) for i in range(span)]
        last = len(keys) - 1
        plan.append((last, last, 0.0))
        plan = plan[:n_frames] + [(last, last, 0.0)] * max(0, n_frames - len(plan))
        return interpolate([kf.value for kf in keys], plan)


PresetSource = Union[ExpressionSet, Preset, Mapping, str]


def _resolve_preset(name, presets: Optional[Mapping], where: str) -> ExpressionSet:
    if not isinstance(name, str):
        raise KeyframeError(f"{where}: 'preset' must be a preset name, got {name!r}")
    library = presets if presets is not None else list_presets()
    if name not in library:
        known = ", ".join(sorted(library)) or "none"
        raise KeyframeError(f"{where}: no preset named {name!r} (available: {known})")
    item = library[name]
    if isinstance(item, ExpressionSet):
        return item
    if isinstance(item, Preset):
        return item.expression
    return load_preset(item).expression


def _whole(where: str, value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise KeyframeError(f"{where}: '{name}' must be a whole number, "
                            f"got {json.dumps(value)[:40]}")
    return int(value)


def _keyframe(n: int, item, sets, presets) -> Keyframe:
    where = f"keyframe {n}"
    if not isinstance(item, Mapping):
        raise KeyframeError(f"{where}: expected an object like {{\"frame\": 0, \"preset\": "
                            f"\"smile\"}}, got {json.dumps(item)[:60]}")
    unknown = sorted(set(item) - set(KEYS), key=str)
    if unknown:
        raise KeyframeError(f"{where}: unknown key(s) {unknown}; a keyframe has {', '.join(KEYS)}")
    if "frame" not in item:
        raise KeyframeError(f"{where}: 'frame' (the frame number it sets) is missing")
    frame = _whole(where, item["frame"], "frame")
    if not 0 <= frame < MAX_FRAMES:
        raise KeyframeError(f"{where}: frame {frame} is outside 0..{MAX_FRAMES - 1}")
    where = f"keyframe {n} (frame {frame})"
    bases = [b for b in BASES if b in item]
    if len(bases) > 1:
        raise KeyframeError(f"{where}: give at most one of {', '.join(BASES)} (got {bases}); "
                            "add sliders on top with 'sliders'")
    try:
        value = ExpressionSet.zeros()
        if "preset" in item:
            value = _resolve_preset(item["preset"], presets, where)
        elif "set" in item:
            index = _whole(where, item["set"], "set")
            try:
                value = chain_target(index, sets)
            except NoSuchSet:
                raise KeyframeError(f"{where}: set {index} does not exist; there are "
                                    f"{len(sets)} set(s): use 0, 1..{len(sets)} or "
                                    f"-1..-{len(sets)}") from None
        elif "expression" in item:
            inline = item["expression"]
            if not isinstance(inline, Mapping):
                raise KeyframeError(f"{where}: 'expression' must be an object with e, r, s, t")
            value = preset_from_dict({"version": 1, "name": "inline", **inline}).expression
        if "sliders" in item:
            value = value + build_expression(Sliders.from_mapping(item["sliders"]))
        amount = item.get("amount", 1.0)
        if isinstance(amount, bool) or not isinstance(amount, numbers.Real) \
                or not math.isfinite(amount):
            raise KeyframeError(f"{where}: 'amount' must be a finite number, got {amount!r}")
        value = value * float(amount)
    except KeyframeError:
        raise
    except ExpressionError as exc:
        raise KeyframeError(f"{where}: {exc}") from None
    curve = item.get("ease", "linear")
    if curve not in EASINGS:
        raise KeyframeError(f"{where}: unknown ease {curve!r}; use one of {', '.join(EASINGS)}")
    return Keyframe(frame, value, curve)


def parse_keyframes(data: Union[str, Sequence], sets: Sequence[ExpressionSet] = (),
                    presets: Optional[Mapping[str, PresetSource]] = None) -> Keyframes:
    """Validate a keyframe list (JSON text or parsed). ``sets``: the chain's expression
    sets for "set"; ``presets``: {name: ExpressionSet | Preset | preset dict | path}
    (default: the shipped presets)."""
    if isinstance(data, str):
        if len(data) > MAX_TEXT:
            raise KeyframeError(f"keyframe text is {len(data)} characters; at most {MAX_TEXT}")
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise KeyframeError(f"keyframes are not valid JSON: {exc}") from None
    if isinstance(data, Mapping) or not isinstance(data, Sequence) or not data:
        raise KeyframeError("keyframes are a non-empty JSON list of objects like "
                            "[{\"frame\": 0, \"preset\": \"smile\"}, {\"frame\": 30}]")
    keys = [_keyframe(n, item, sets, presets) for n, item in enumerate(data, 1)]
    keys.sort(key=lambda kf: kf.frame)
    for a, b in zip(keys, keys[1:]):
        if a.frame == b.frame:
            raise KeyframeError(f"two keyframes set frame {a.frame}; keep one")
    if keys[0].frame != 0:
        keys.insert(0, Keyframe(0, ExpressionSet.zeros(), "linear"))
    return Keyframes(tuple(keys))
