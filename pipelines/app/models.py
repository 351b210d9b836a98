"""Find (or download) and load each family's networks from the model folders.

Shared by the loader nodes and the command line. ``roots`` is {family: [folders]} as the
host bridge reports it (None = the standalone default folders).
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from ..core import weights
from ..core.errors import MissingWeightsError

LP_LAYOUTS = ("auto", "official", "safetensors", "ditto")
# registry group that holds each renderer layout, and the family folder it sits in
_LP_GROUP = {"official": ("liveportrait", "official"), "safetensors": ("liveportrait", "safetensors"),
             "ditto": ("ditto", "pytorch")}

_CACHE: dict = {}


def _cached(key, build):
    """One loaded bundle per family, reused while its files/device/dtype are unchanged
    (several loader nodes and repeated runs share it; a new choice replaces it, which
    keeps memory predictable)."""
    family = key[0]
    held = _CACHE.get(family)
    if held is None or held[0] != key:
        _CACHE.pop(family, None)
        _CACHE[family] = (key, build())
    return _CACHE[family][1]


def liveportrait_files(layout: str = "auto", roots: Optional[dict] = None, download: bool = False) -> dict:
    """{role: path} of the five renderer files in the first folder holding a complete layout."""
    from ..liveportrait.loader import find_renderer_files

    layouts = ("official", "safetensors", "ditto") if layout == "auto" else (layout,)
    errors = []
    for name in layouts:
        family, group = _LP_GROUP[name]
        for folder in weights.folders(family, roots):
            if not os.path.isdir(folder):
                continue
            try:
                return find_renderer_files(folder, name)
            except MissingWeightsError as exc:
                errors.append(str(exc))
    if download:
        name = "official" if layout == "auto" else layout
        family, group = _LP_GROUP[name]
        paths = weights.resolve(family, group, roots, download=True, progress=print)
        return {role: paths[role] for role in ("appearance", "motion", "warping", "decoder", "stitching")}
    name = "official" if layout == "auto" else layout
    family, group = _LP_GROUP[name]
    missing = weights.entries(family, group)
    missing = [w for w in missing if w.role in ("appearance", "motion", "warping", "decoder", "stitching")]
    raise MissingWeightsError(weights.missing_message(missing, roots)
                              + ("\n(also accepted: the Kijai safetensors or Ditto layouts)" if layout == "auto" else ""))


def load_liveportrait(layout: str = "auto", roots: Optional[dict] = None, download: bool = False,
                      device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32):
    from ..liveportrait.loader import load_renderer
    from ..core.runtime import pick_device

    device = device or pick_device("auto")
    files = liveportrait_files(layout, roots, download)
    key = ("liveportrait", tuple(sorted(files.items())), str(device), str(dtype), tiny_configs())
    if tiny_configs():
        from ..liveportrait.loader import TINY_RENDERER

        return _cached(key, lambda: load_renderer(files, device=device, dtype=dtype, config=TINY_RENDERER))
    return _cached(key, lambda: load_renderer(files, device=device, dtype=dtype))


def tiny_configs() -> bool:
    """Test hook: TALKING_HEAD_TINY_MODELS=1 builds the tiny network configs, so end-to-end
    tests load fake checkpoints of tiny size through the real loaders and file layouts."""
    return os.environ.get("TALKING_HEAD_TINY_MODELS") == "1"


def load_ditto_bundle(roots: Optional[dict] = None, download: bool = False,
                      device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32):
    """Ditto's LMDM, cfg and streaming HuBERT (the renderer loads separately)."""
    from ..ditto import load_ditto
    from ..ditto.lmdm import TINY
    from ..core.runtime import pick_device

    device = device or pick_device("auto")
    files = weights.resolve("ditto", "pytorch", roots, download=download, progress=print)
    chosen = {r: files[r] for r in ("lmdm", "cfg", "hubert")}
    key = ("ditto", tuple(sorted(chosen.items())), str(device), str(dtype), tiny_configs())
    return _cached(key, lambda: load_ditto(chosen, device, dtype,
                                           lmdm_config=TINY if tiny_configs() else None))


def load_musetalk_bundle(roots: Optional[dict] = None, download: bool = False,
                         device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32):
    """MuseTalk v1.5's UNet (+ musetalk.json), VAE, whisper-tiny encoder and face parser."""
    from ..musetalk import TINY_CONFIGS, load_musetalk
    from ..core.runtime import pick_device

    device = device or pick_device("auto")
    files = weights.resolve("musetalk", "v15", roots, download=download, progress=print)
    chosen = {"unet": files["unet"], "unet_config": files["unet_config"], "vae": files["vae"],
              "vae_config": files["vae_config"], "whisper": files["whisper"],
              "whisper_config": files["whisper_config"], "parsing": files["parsing"]}
    key = ("musetalk", tuple(sorted(chosen.items())), str(device), str(dtype), tiny_configs())
    configs = TINY_CONFIGS if tiny_configs() else None
    return _cached(key, lambda: load_musetalk(chosen, device, dtype, configs=configs))
