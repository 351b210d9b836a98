"""Find (or download) and load each family's networks from the model folders, once.

Shared by the loader nodes and the command line. ``roots`` is {family: [folders]} as the
host bridge reports it (None = the standalone default folders). One bundle per family is
kept while its files, device and dtype stay the same, so several loader nodes and repeated
runs share it; a new choice replaces it (memory stays predictable). Face detectors are
cached the same way (a MediaPipe graph takes about a second to build).
"""
from __future__ import annotations

import atexit
import os
from typing import Optional

from ..core import weights
from ..core.choices import DETECTORS, LP_LAYOUTS
from ..core.errors import MissingWeightsError, TalkingHeadError
from ..core.runtime import RunContext

# registry group that holds each renderer layout, and the family folder it sits in
_LP_GROUP = {"official": ("liveportrait", "official"), "safetensors": ("liveportrait", "safetensors"),
             "ditto": ("ditto", "pytorch")}
_RENDERER_ROLES = ("appearance", "motion", "warping", "decoder", "stitching")

# The network sizes the loaders build: None = the released checkpoints' own. A library user
# with re-trained smaller networks (and the tests, with tiny fakes) sets them here.
SIZES: dict = {"liveportrait": None, "ditto": None, "musetalk": None}

_CACHE: dict = {}
_DETECTORS: dict = {}


def _cached(key, build):
    family = key[0]
    held = _CACHE.get(family)
    if held is None or held[0] != key:
        _CACHE.pop(family, None)
        _CACHE[family] = (key, build())
    return _CACHE[family][1]


def _choice(value: str, allowed: tuple, what: str) -> str:
    if value not in allowed:
        raise TalkingHeadError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    return value


def liveportrait_files(layout: str = "auto", roots: Optional[dict] = None, download: bool = False) -> dict:
    """{role: path} of the five renderer files in the first folder holding a complete layout."""
    from ..liveportrait.loader import find_renderer_files

    _choice(layout, LP_LAYOUTS, "LivePortrait layout")
    layouts = ("official", "safetensors", "ditto") if layout == "auto" else (layout,)
    for name in layouts:
        family, _group = _LP_GROUP[name]
        for folder in weights.folders(family, roots):
            if not os.path.isdir(folder):
                continue
            try:
                return find_renderer_files(folder, name)
            except MissingWeightsError:
                continue
    name = "official" if layout == "auto" else layout
    family, group = _LP_GROUP[name]
    if download:
        paths = weights.resolve(family, group, roots, download=True, progress=print)
        return {role: paths[role] for role in _RENDERER_ROLES}
    missing = [w for w in weights.entries(family, group) if w.role in _RENDERER_ROLES]
    raise MissingWeightsError(weights.missing_message(missing, roots)
                              + ("\n(also accepted: the Kijai safetensors or Ditto layouts)" if layout == "auto" else ""))


def require(groups, roots: Optional[dict] = None, layout: Optional[str] = None) -> None:
    """Before anything loads: one error naming every missing file a command needs, from the
    registry ``groups`` ((family, group) pairs) and, with ``layout``, a renderer layout."""
    messages = []
    absent = weights.absent_files(groups, roots)
    if absent:
        messages.append(weights.missing_message(absent, roots))
    if layout is not None:
        try:
            liveportrait_files(layout, roots, download=False)
        except MissingWeightsError as exc:
            messages.append(str(exc))
    if messages:
        raise MissingWeightsError("\n".join(messages))


def load_liveportrait(layout: str = "auto", roots: Optional[dict] = None, download: bool = False,
                      ctx: RunContext = RunContext()):
    """The renderer bundle (F, M, W, G, stitching/retargeting) on ``ctx.device``."""
    from ..liveportrait.loader import RendererConfig, load_renderer

    files = liveportrait_files(layout, roots, download)
    config = SIZES["liveportrait"] or RendererConfig()
    key = ("liveportrait", tuple(sorted(files.items())), str(ctx.device), str(ctx.dtype), repr(config))
    return _cached(key, lambda: load_renderer(files, ctx.device, ctx.dtype, config))


def load_ditto_bundle(roots: Optional[dict] = None, download: bool = False,
                      ctx: RunContext = RunContext()):
    """Ditto's LMDM, cfg and streaming HuBERT (the renderer loads separately)."""
    from ..ditto import load_ditto

    files = weights.resolve("ditto", "pytorch", roots, download=download, progress=print)
    chosen = {r: files[r] for r in ("lmdm", "cfg", "hubert")}
    config = SIZES["ditto"]
    key = ("ditto", tuple(sorted(chosen.items())), str(ctx.device), str(ctx.dtype), repr(config))
    return _cached(key, lambda: load_ditto(chosen, ctx.device, ctx.dtype, lmdm_config=config))


def load_musetalk_bundle(roots: Optional[dict] = None, download: bool = False,
                         ctx: RunContext = RunContext()):
    """MuseTalk v1.5's UNet (+ musetalk.json), VAE, whisper-tiny encoder and face parser."""
    from ..musetalk import load_musetalk

    files = weights.resolve("musetalk", "v15", roots, download=download, progress=print)
    chosen = {r: files[r] for r in ("unet", "unet_config", "vae", "vae_config", "whisper",
                                    "whisper_config", "parsing")}
    configs = SIZES["musetalk"]
    key = ("musetalk", tuple(sorted(chosen.items())), str(ctx.device), str(ctx.dtype), repr(configs))
    return _cached(key, lambda: load_musetalk(chosen, ctx.device, ctx.dtype, configs=configs))


def load_joyvasa_bundle(roots: Optional[dict] = None, download: bool = False,
                        ctx: RunContext = RunContext(), convert: bool = False):
    """JoyVASA's motion generator (its HuBERT included) and motion template; a converted
    .safetensors next to the .pt is preferred, and ``convert`` writes it once."""
    from ..joyvasa import convert_to_safetensors, load_joyvasa
    from ..joyvasa.loader import converted_pair

    files = weights.resolve("joyvasa", "hubert_chinese", roots, download=download, progress=print)
    chosen = {r: files[r] for r in ("motion_generator", "template")}
    if convert and not converted_pair(chosen["motion_generator"]):
        convert_to_safetensors(chosen["motion_generator"])
    key = ("joyvasa", tuple(sorted(chosen.items())), str(ctx.device))
    return _cached(key, lambda: load_joyvasa(chosen, ctx.device))


def detector(kind: str = "mediapipe", roots: Optional[dict] = None, download: bool = False):
    """A face detector (one per kind for the session) whose files come from the aux folder."""
    from .. import face

    _choice(kind, DETECTORS, "face detector")
    if kind in _DETECTORS:
        return _DETECTORS[kind]
    if kind == "mediapipe":
        paths = weights.resolve("aux", "mediapipe", roots, download=download, progress=print)
        made = face.MediaPipeFaceDetector(paths["face_landmarker"], paths["face_detector"])
    else:
        wanted = weights.entries("aux", "insightface", True)
        found = {w.role: weights.find(w, roots) for w in wanted}
        if None in found.values():
            missing = [w for w in wanted if found[w.role] is None]
            raise MissingWeightsError(
                "The insightface detector needs files that are not installed (they carry a "
                "non-commercial licence, so the pack never downloads them itself):\n"
                + weights.missing_message(missing, roots) + "\nOr choose the 'mediapipe' detector.")
        made = face.InsightFaceDetector(found["insight_detector"], found["insight_landmark106"],
                                        found["landmark203"])
    _DETECTORS[kind] = made
    return made


def close_detectors() -> None:
    """Close MediaPipe graphs explicitly: their own __del__ fails during interpreter
    teardown and prints a traceback after an otherwise clean run."""
    while _DETECTORS:
        _DETECTORS.popitem()[1].close()


atexit.register(close_detectors)
