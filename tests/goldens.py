"""Golden sets as data: everything a golden test needs comes from ``fidelity/<family>/``.

A golden set is a folder with ``cases.json`` (base seed, cases, tolerances, environment)
and the tensor files it names. The same tests run against any set of that form (another
base seed, mirrored inputs, other tolerances), so nothing here is a constant of one set:

* :meth:`GoldenSet.keyed` builds keyed weights with the set's own ``base_seed``;
* :meth:`GoldenSet.case` / :meth:`GoldenSet.tensors` give the cases and their inputs;
* :func:`max_rel` / :func:`uint8_allowance` read the stated tolerance of an output.
"""
from __future__ import annotations

import functools
import json
import os
import re
from typing import Callable, Mapping, Optional

import numpy as np

from tests.paths import FIDELITY, require_shared


class GoldenSet:
    def __init__(self, family: str, fidelity: str = FIDELITY):
        require_shared()
        self.family = family
        self.folder = os.path.join(fidelity, family)
        with open(os.path.join(self.folder, "cases.json")) as fh:
            self.data = json.load(fh)
        cases = self.data["cases"]
        self.cases = list(cases.values()) if isinstance(cases, dict) else list(cases)

    @property
    def base_seed(self) -> int:
        return int(self.data["base_seed"])

    def case(self, name: str) -> dict:
        """The case called ``name``, or whose name starts with ``name + '_'`` (e.g. "case4")."""
        for c in self.cases:
            if c["name"] == name:
                return c
        hits = [c for c in self.cases if c["name"].startswith(name + "_")]
        if len(hits) != 1:
            raise KeyError(f"{self.family} golden set has no single case {name!r}")
        return hits[0]

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name if "." in name else name + ".safetensors")

    def tensors(self, name: str, lib: str = "torch") -> dict:
        return _load(self.path(name), lib)

    def keyed(self, entries: Mapping[str, tuple], keep: Optional[Mapping] = None,
              key_for_seed: Callable[[str], str] = lambda k: k) -> dict:
        """Keyed tensors for ``entries`` ({key: (shape, dtype)}) with this set's base seed."""
        from tests.fakes import keyed_state_dict

        return keyed_state_dict(entries, keep=keep, key_for_seed=key_for_seed,
                                base_seed=self.base_seed)

    def opencv_version(self) -> Optional[str]:
        env = self.data.get("environment") or self.data.get("reproducibility") or {}
        return env.get("opencv") if isinstance(env, dict) else None


@functools.lru_cache(maxsize=None)
def golden(family: str) -> GoldenSet:
    return GoldenSet(family)


@functools.lru_cache(maxsize=32)
def _load(path: str, lib: str) -> dict:
    if lib == "numpy":
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    return load_file(path)


# ---------------------------------------------------------------------------------------
# tolerances


def ref_scale(tol: dict) -> float:
    """The ``ref_scale = ... = <value>`` a float output's metric states."""
    return float(re.search(r"=\s*([0-9.eE+-]+)\s*$", tol["metric"]).group(1))


def max_rel(tol: dict) -> float:
    return float(tol["suggested_max_rel"])


def rel_error(ours, gold, tol: dict) -> float:
    """max|ours - gold| / the stated ref_scale."""
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(gold, np.float64))
    return float(diff.max()) / ref_scale(tol)


_SAMPLER_FRAC = re.compile(r"\|diff\|\s*<=\s*(\d+)\s*on uint8 for\s*<\s*([0-9.]+)\s*%")
_SAMPLER_EDGE = re.compile(r"\|diff\|\s*<=\s*(\d+)\s*near the crop border")


def _other_sampler_allowance(gs: GoldenSet) -> Optional[tuple]:
    """The set's stated allowance for a warp other than the reference's own OpenCV build
    ("|diff|<=1 on uint8 for <1% of pixels ... |diff|<=2 near the crop border")."""
    for c in gs.cases:
        text = json.dumps(c.get("tolerance", {}))
        m = _SAMPLER_FRAC.search(text)
        if m:
            levels = int(m.group(1))
            edge = _SAMPLER_EDGE.search(text)
            if edge:
                levels = max(levels, int(edge.group(1)))
            return levels, float(m.group(2)) / 100.0
    return None


def uint8_allowance(gs: GoldenSet, case: dict, key: Optional[str] = None) -> tuple:
    """(max grey levels, max fraction of differing values) a uint8 output may differ by.

    Outputs with ``suggested_max_abs_levels`` / ``suggested_max_frac_differing`` use those.
    Outputs stated bit-exact for OpenCV ("0 (bit-exact)", "exact") are exact with the
    OpenCV version the set was made with; under another build the set's stated allowance
    for another sampler applies (warpAffine's fixed-point rounding differs between builds).
    """
    tol = case.get("tolerance", {})
    entry = tol.get(key) if key is not None and isinstance(tol.get(key), dict) else None
    if entry is not None and "suggested_max_abs_levels" in entry:
        return int(entry["suggested_max_abs_levels"]), float(entry["suggested_max_frac_differing"])
    import cv2

    stated = gs.opencv_version()
    if stated is None or cv2.__version__.split("-")[0] == stated:
        return 0, 0.0
    return _other_sampler_allowance(gs) or (0, 0.0)


def uint8_levels(ours, gold) -> tuple:
    """(max abs difference in grey levels, fraction of values that differ)."""
    d = np.abs(np.asarray(ours, np.float64) - np.asarray(gold, np.float64))
    return float(d.max()), float((d > 0).mean())


def assert_uint8_within(ours, gold, allowance: tuple, what: str = "") -> None:
    levels, frac = uint8_levels(ours, gold)
    assert np.shape(ours) == np.shape(gold), (what, np.shape(ours), np.shape(gold))
    assert levels <= allowance[0] and frac <= allowance[1], \
        f"{what}: {levels} levels on {frac:.2e} of values > stated {allowance}"
