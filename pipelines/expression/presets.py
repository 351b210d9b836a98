"""Expression presets: small JSON files users can read, edit and share.

Schema (version 1)::

    {"version": 1, "name": "smile", "description": "what made it",
     "e": [[x, y, z], ... 21 rows], "r": [pitch, yaw, roll], "s": 0, "t": 0}

``version``, ``name`` and ``e`` are required; ``description`` defaults to "", ``r`` to
zeros, ``s`` and ``t`` to 0. Anything else is refused: unknown or duplicate keys, wrong
shapes, wrong types (true/false are not numbers), NaN or infinite numbers, files over
64 KiB. A preset is parsed with the json module only: nothing in it is ever executed
(unlike the reference's pickled EXP_DATA files). A preset is found by its file name
without ".json" (see :func:`list_presets`); ``name`` is what it calls itself.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Union

import numpy as np
import torch

from .errors import ExpressionShapeError, PresetError
from .expset import NUM_KP, ExpressionSet

PRESET_VERSION = 1
SHIPPED_PRESETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets")
MAX_PRESET_BYTES = 64 * 1024
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
# names Windows keeps for devices: a preset shared with a Windows user must stay a file
DEVICE_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                *(f"lpt{i}" for i in range(1, 10))}
REQUIRED = ("version", "name", "e")
OPTIONAL = ("description", "r", "s", "t")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    expression: ExpressionSet


def _reject_constant(token: str):
    raise PresetError(f"the preset holds {token}; every number must be finite")


def _unique_keys(pairs):
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise PresetError(f"the preset repeats the key(s) {dupes}; each key may appear once")
    return dict(pairs)


def _number(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PresetError(f"preset '{where}' must be a number, got {json.dumps(value)[:40]}")
    value = float(value)
    if not math.isfinite(value):
        raise PresetError(f"preset '{where}' is {value}; every number must be finite")
    return value


def _numbers(where: str, value, length: int) -> list:
    if not isinstance(value, list) or len(value) != length:
        got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
        raise PresetError(f"preset '{where}' must be a list of {length} numbers, got {got}")
    return [_number(f"{where}[{i}]", v) for i, v in enumerate(value)]


def _text(where: str, value, limit: int, empty_ok: bool) -> str:
    if not isinstance(value, str):
        raise PresetError(f"preset '{where}' must be text, got {type(value).__name__}")
    if (not empty_ok and not value.strip()) or len(value) > limit:
        raise PresetError(f"preset '{where}' must be {'' if empty_ok else 'non-empty '}text of "
                          f"at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise PresetError(f"preset '{where}' holds control characters")
    return value


def preset_from_dict(data: Mapping) -> Preset:
    """Validate a preset value (the parsed JSON object) and make it a :class:`Preset`."""
    if not isinstance(data, Mapping):
        raise PresetError(f"a preset is a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL), key=str)
    if unknown:
        raise PresetError(f"unknown preset key(s) {unknown}; a preset has "
                          f"{', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise PresetError(f"the preset lacks {missing} (required: {', '.join(REQUIRED)})")
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != PRESET_VERSION:
        raise PresetError(f"preset version {json.dumps(version)[:20]} is not supported; this "
                          f"pack reads version {PRESET_VERSION}")
    name = _text("name", data["name"], 100, empty_ok=False)
    description = _text("description", data.get("description", ""), 2000, empty_ok=True)
    rows = data["e"]
    if not isinstance(rows, list) or len(rows) != NUM_KP:
        got = f"{len(rows)} rows" if isinstance(rows, list) else type(rows).__name__
        raise PresetError(f"preset 'e' must be {NUM_KP} rows of 3 numbers (one per keypoint), "
                          f"got {got}")
    e = [_numbers(f"e[{k}]", row, 3) for k, row in enumerate(rows)]
    r = _numbers("r", data.get("r", [0, 0, 0]), 3)
    s, t = _number("s", data.get("s", 0)), _number("t", data.get("t", 0))
    try:
        expression = ExpressionSet(torch.tensor(e, dtype=torch.float64),
                                   torch.tensor(r, dtype=torch.float64), s, t)
    except ExpressionShapeError:  # finite in float64, infinite in float32
        raise PresetError("the preset holds a number too large for float32") from None
    return Preset(name, description, expression)


def load_preset(source: Union[str, os.PathLike, Mapping]) -> Preset:
    """A preset from a JSON file path or an already parsed dict (validated either way)."""
    if not isinstance(source, (str, os.PathLike)):
        return preset_from_dict(source)  # refuses anything but a JSON object's dict
    path = os.fspath(source)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise PresetError(f"no preset file at {path}; check the name or use list_presets() "
                          "to see what exists") from None
    if size > MAX_PRESET_BYTES:
        raise PresetError(f"{path} is {size} bytes; a preset is at most {MAX_PRESET_BYTES} bytes "
                          "(is it really a preset?)")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path} is not a JSON preset: {exc}") from None
    except PresetError as exc:
        raise PresetError(f"{path}: {exc}") from None
    try:
        return preset_from_dict(data)
    except PresetError as exc:
        raise PresetError(f"{path}: {exc}") from None


def preset_to_dict(expression: ExpressionSet, name: str, description: str = "") -> dict:
    """The JSON value of a preset (float32 values written exactly)."""
    def plain(values):  # the shortest decimal that reads back as the same float32; no -0.0
        return [float(str(np.float32(v))) + 0.0 for v in values]

    data = {"version": PRESET_VERSION, "name": name, "description": description,
            "e": [plain(row) for row in expression.e.tolist()],
            "r": plain(expression.r.tolist()), "s": expression.s + 0.0, "t": expression.t + 0.0}
    preset_from_dict(data)  # the same checks as loading: never write what cannot be read
    return data


def _preset_text(data: dict) -> str:
    """Pretty JSON with one keypoint row per line (readable and diff-friendly)."""
    lines = []
    for key, value in data.items():
        if key == "e":
            rows = ",\n".join("  " + json.dumps(row) for row in value)
            lines.append(f' "e": [\n{rows}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_preset(path: Union[str, os.PathLike], expression: ExpressionSet, name: str,
                description: str = "") -> str:
    """Write a preset file (replacing it atomically); returns the path."""
    path = os.fspath(path)
    if not path.endswith(".json"):
        raise PresetError(f"a preset file name ends in .json, got {path!r}")
    data = preset_to_dict(expression, name, description)
    text = _preset_text(data)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".preset-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def preset_file(folder: Union[str, os.PathLike], name: str) -> str:
    """The path of preset ``name`` in ``folder``, refusing any name that is not a plain
    file name (so a name typed in a node can never write outside ``folder``).

    A name is 1-64 letters, digits, spaces, '-', '_' or '.', starting with a letter or
    digit, not ending in '.'; a trailing ".json" is dropped."""
    text = name.strip() if isinstance(name, str) else ""
    if text.lower().endswith(".json"):
        text = text[:-5].rstrip()
    if not NAME_RULE.match(text) or text.endswith(".") \
            or text.lower().split(".")[0] in DEVICE_NAMES:
        raise PresetError(f"{name!r} cannot be a preset name: use 1-64 letters, digits, spaces, "
                          "'-', '_' or '.', starting with a letter or digit (no folders, no "
                          "'/' or '\\', not a device name such as CON or NUL), e.g. 'big smile'")
    base = os.path.abspath(os.fspath(folder))
    path = os.path.join(base, text + ".json")
    if os.path.dirname(path) != base:  # belt and braces: the rule above already ensures it
        raise PresetError(f"{name!r} points outside the presets folder")
    return path


def list_presets(folders: Optional[Iterable[Union[str, os.PathLike]]] = None) -> dict:
    """{preset name (file name without .json): path} over ``folders`` (default: the shipped
    presets); a name found in an earlier folder wins; missing folders are skipped."""
    found = {}
    for folder in (folders if folders is not None else [SHIPPED_PRESETS]):
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if entry.endswith(".json") and not entry.startswith("."):
                found.setdefault(entry[:-5], os.path.join(folder, entry))
    return dict(sorted(found.items()))
