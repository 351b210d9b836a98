"""Find and strictly load LivePortrait's renderer networks in every released layout.

Layouts (file names relative to the folder a user points at):

* ``official`` - KwaiVGI/LivePortrait ``.pth``: ``base_models/{appearance_feature_extractor,
  motion_extractor,warping_module,spade_generator}.pth`` and
  ``retargeting_models/stitching_retargeting_module.pth`` (nested
  ``{retarget_shoulder, retarget_mouth, retarget_eye}``, inner keys with DDP ``module.``).
* ``ditto`` - ditto-talkinghead ``models/{appearance_extractor,motion_extractor,warp_network,
  decoder,stitch_network}.pth``; ``stitch_network.pth`` is ``{'retarget_shoulder': sd}``.
* ``safetensors`` - Kijai/LivePortrait_safetensors: the same five names as ``.safetensors``,
  the same keys, the stitching file flattened to ``retarget_shoulder_module.mlp.N.*`` etc.

Every file is checked against the key set the network expects (which equals the official
manifests at the default sizes); a mismatch raises :class:`CheckpointError` listing the
missing, unexpected and mis-shaped keys. The decoder's spectral-norm triplets are folded
into plain conv weights once, after that check.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

import torch

from ..core.checkpoint_io import (
    load_state_dict_strict, mismatch_report, read_state_dict, strip_prefix)
from ..core.errors import CheckpointError, MissingWeightsError
from ..core.types import ModelBundle
from .appearance import TINY_APPEARANCE, AppearanceConfig, AppearanceFeatureExtractor
from .decoder import (
    TINY_DECODER, DecoderConfig, SPADEDecoder, fold_spectral_norm, official_key_shapes)
from .motion import TINY_MOTION, MotionConfig, MotionExtractor
from .stitching import ENTRIES, StitchingMLP
from .warping import TINY_WARPING, WarpingConfig, WarpingNetwork
from ..core.errors import ShapeError

ROLES = ("appearance", "motion", "warping", "decoder", "stitching")
OPTIONAL_ROLES = ("retarget_eye", "retarget_lip")


@dataclass(frozen=True)
class RendererConfig:
    appearance: AppearanceConfig = AppearanceConfig()
    motion: MotionConfig = MotionConfig()
    warping: WarpingConfig = WarpingConfig()
    decoder: DecoderConfig = DecoderConfig()


# consistent tiny sizes for tests (F's volume feeds W, W's output feeds G)
TINY_RENDERER = RendererConfig(TINY_APPEARANCE, TINY_MOTION, TINY_WARPING, TINY_DECODER)

LAYOUTS = {
    "official": {
        "appearance": "base_models/appearance_feature_extractor.pth",
        "motion": "base_models/motion_extractor.pth",
        "warping": "base_models/warping_module.pth",
        "decoder": "base_models/spade_generator.pth",
        "stitching": "retargeting_models/stitching_retargeting_module.pth",
    },
    "ditto": {
        "appearance": "models/appearance_extractor.pth",
        "motion": "models/motion_extractor.pth",
        "warping": "models/warp_network.pth",
        "decoder": "models/decoder.pth",
        "stitching": "models/stitch_network.pth",
    },
    "safetensors": {
        "appearance": "appearance_feature_extractor.safetensors",
        "motion": "motion_extractor.safetensors",
        "warping": "warping_module.safetensors",
        "decoder": "spade_generator.safetensors",
        "stitching": "stitching_retargeting_module.safetensors",
    },
}
# where each layout's root may sit below the folder a user names
_SUBFOLDERS = {
    "official": ("", "liveportrait", "pretrained_weights/liveportrait"),
    "ditto": ("", "ditto_pytorch", "checkpoints/ditto_pytorch"),
    "safetensors": ("", "liveportrait"),
}
_DOWNLOAD = {
    "official": "huggingface-cli download KwaiVGI/LivePortrait --local-dir <folder> "
                "--include 'liveportrait/base_models/*' 'liveportrait/retargeting_models/*'",
    "ditto": "huggingface-cli download digital-avatar/ditto-talkinghead --local-dir <folder> "
             "--include 'ditto_pytorch/models/*'",
    "safetensors": "huggingface-cli download Kijai/LivePortrait_safetensors --local-dir <folder> "
                   "--exclude '*animal*'",
}


# ---------------------------------------------------------------------------------------
# finding files


def find_renderer_files(folder: str, layout: str = "auto") -> dict:
    """Role -> path of the five renderer files of ``layout`` ("official", "ditto",
    "safetensors" or "auto": the first complete one) inside ``folder``.

    Raises :class:`MissingWeightsError` naming the missing files, the folder and how to
    download them when no layout is complete.
    """
    folder = os.fspath(folder)
    if layout != "auto" and layout not in LAYOUTS:
        raise ShapeError(f"unknown LivePortrait layout '{layout}' (use one of "
                         f"{', '.join(LAYOUTS)} or auto)")
    best = None  # (found count, layout, root, missing)
    for name in (LAYOUTS if layout == "auto" else [layout]):
        for sub in _SUBFOLDERS[name]:
            root = os.path.join(folder, sub) if sub else folder
            paths = {role: os.path.join(root, rel) for role, rel in LAYOUTS[name].items()}
            missing = [LAYOUTS[name][r] for r, p in paths.items() if not os.path.isfile(p)]
            if not missing:
                return paths
            found = len(paths) - len(missing)
            if best is None or found > best[0]:
                best = (found, name, root, missing)
    _, name, root, missing = best
    if layout == "auto" and best[0] == 0:
        raise MissingWeightsError(
            f"No LivePortrait renderer weights found in {folder}. Put one of these layouts "
            "there:\n" + "\n".join(
                f"  {n}: {', '.join(LAYOUTS[n].values())}\n    download: {_DOWNLOAD[n]}"
                for n in LAYOUTS))
    raise MissingWeightsError(
        f"LivePortrait weights in {root} ({name} layout) are incomplete; missing: "
        f"{', '.join(missing)}. Download them with:\n  {_DOWNLOAD[name]}")


# ---------------------------------------------------------------------------------------
# loading


def build_networks(config: RendererConfig = RendererConfig(), init: bool = False,
                   device="cpu") -> dict:
    """Networks of every role, eval mode. ``init=False`` leaves the memory uninitialised
    (fast; for loading a checkpoint right after), ``init=True`` uses PyTorch's default
    random initialisation; ``device="meta"`` builds shapes only."""
    meta = str(device) == "meta" or not init
    with torch.device("meta" if meta else device):
        nets = {
            "appearance": AppearanceFeatureExtractor(config.appearance),
            "motion": MotionExtractor(config.motion),
            "warping": WarpingNetwork(config.warping),
            "decoder": SPADEDecoder(config.decoder),
        }
        for _outer, (role, cfg) in ENTRIES.items():
            nets[role] = StitchingMLP(cfg)
    if meta and str(device) != "meta":
        nets = {k: v.to_empty(device=device) for k, v in nets.items()}
    return {k: v.eval() for k, v in nets.items()}


class _Expected:
    """Stands in for a module in :func:`mismatch_report`: only ``state_dict()`` is read."""

    def __init__(self, shapes: Mapping[str, tuple]):
        self.shapes = shapes

    def state_dict(self) -> dict:
        return {k: torch.empty(s, device="meta") for k, s in self.shapes.items()}


def load_decoder_state(decoder: SPADEDecoder, sd: Mapping, what: str) -> SPADEDecoder:
    """Check ``sd`` against the official spectral-norm key set, fold, load strictly."""
    report = mismatch_report(_Expected(official_key_shapes(decoder)), sd)
    if report:
        raise CheckpointError(
            f"{what} does not match the SPADE decoder (spade_generator / decoder.pth) "
            f"layout:\n{report}\nThe file is probably a different model or version; "
            "download the official file.")
    return load_state_dict_strict(decoder, fold_spectral_norm(dict(sd)), what)


def split_stitching(obj: Mapping, what: str) -> dict:
    """The stitching/retargeting file as {official entry: bare ``mlp.N.*`` state dict}.

    Accepts the nested official/Ditto dict (inner keys with or without ``module.``),
    Kijai's flattened ``<entry>_module.mlp.N.*`` keys, a flattened ``<entry>.mlp.N.*``,
    and a bare stitching state dict. Keys that fit none of these are reported.
    """
    if all(isinstance(v, Mapping) for v in obj.values()):
        unknown = sorted(set(obj) - set(ENTRIES))
        if unknown:
            raise CheckpointError(
                f"{what}: unexpected entries {unknown}; a stitching/retargeting file holds "
                f"{', '.join(ENTRIES)}.")
        return {outer: strip_prefix(sd, "module.") for outer, sd in obj.items()}
    parts, rest = {}, dict(obj)
    for outer in ENTRIES:
        for prefix in (f"{outer}_module.", f"{outer}.module.", f"{outer}."):
            keys = [k for k in rest if k.startswith(prefix)]
            if keys:
                parts.setdefault(outer, {}).update({k[len(prefix):]: rest.pop(k) for k in keys})
    if not parts:  # a bare state dict of the stitching MLP alone
        return {"retarget_shoulder": strip_prefix(rest, "module.")}
    if rest:
        parts.setdefault("retarget_shoulder", {}).update(rest)  # reported as unexpected
    return parts


def load_stitching(obj: Mapping, what: str, nets: dict) -> list:
    """Load every MLP present in a stitching file into ``nets``; returns the roles loaded."""
    parts = split_stitching(obj, what)
    if "retarget_shoulder" not in parts:
        raise CheckpointError(f"{what} has no 'retarget_shoulder' (stitching) network; "
                              f"found {', '.join(sorted(parts))}.")
    loaded = []
    for outer, sd in parts.items():
        role, _cfg = ENTRIES[outer]
        load_state_dict_strict(nets[role], sd, f"{what} [{outer}]")
        loaded.append(role)
    return loaded


def resolve_dtype(device, dtype) -> torch.dtype:
    """Half precision only where it pays: CPU always computes in fp32."""
    device = torch.device(device)
    if dtype is None or device.type == "cpu":
        return torch.float32
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ShapeError(f"unsupported dtype {dtype}; use float32, float16 or bfloat16")
    return dtype


def default_channels_last(device) -> dict:
    """Which 2-D networks take channels-last tensors. Measured on a 2-core CPU (torch 2.13,
    fp32, batch 1): M about 5% faster channels-last, G about 20% slower. On CUDA both are
    channels-last, the layout tensor cores use for fp16/bf16 (not measured: no GPU here)."""
    cuda = torch.device(device).type == "cuda"
    return {"motion": True, "decoder": cuda}


def load_renderer(files: Mapping[str, str], device="cpu", dtype=torch.float32,
                  config: RendererConfig = RendererConfig(),
                  channels_last: Optional[dict] = None) -> ModelBundle:
    """Load the renderer networks from ``files`` (role -> path, roles as in :data:`ROLES`;
    see :func:`find_renderer_files`) into a ``ModelBundle(family="liveportrait")``.

    nets: appearance (F), motion (M), warping (W), decoder (G), stitching (S), and
    retarget_eye / retarget_lip when the stitching file holds them. F/M/W/G live on
    ``device`` in fp32 and run under autocast when ``dtype`` is half (on the CPU the dtype
    falls back to fp32); the keypoint-space MLPs stay on the CPU in fp32.
    ``channels_last``: {"motion": bool, "decoder": bool}, default
    :func:`default_channels_last`.
    """
    missing = [r for r in ROLES if r not in files]
    if missing:
        raise MissingWeightsError(f"LivePortrait renderer files missing for: {', '.join(missing)}")
    device = torch.device(device)
    nets = build_networks(config)
    for role in ("appearance", "motion", "warping"):
        load_state_dict_strict(nets[role], read_state_dict(files[role]), files[role])
    load_decoder_state(nets["decoder"], read_state_dict(files["decoder"]), files["decoder"])
    loaded = load_stitching(read_state_dict(files["stitching"]), files["stitching"], nets)
    for role in OPTIONAL_ROLES:
        if role not in loaded:
            del nets[role]
    layout = dict(default_channels_last(device), **(channels_last or {}))
    unknown = set(layout) - {"motion", "decoder"}
    if unknown:  # F and W hold 3-D convs, which have no channels-last layout
        raise ShapeError(f"channels_last applies to 'motion' and 'decoder' only, not {unknown}")
    for role in ("appearance", "motion", "warping", "decoder"):
        nets[role].to(device)
        if layout.get(role):
            nets[role].to(memory_format=torch.channels_last)
    for net in nets.values():
        net.requires_grad_(False).eval()
    return ModelBundle(family="liveportrait", nets=nets, device=device,
                       dtype=resolve_dtype(device, dtype), files=dict(files),
                       extra={"config": config, "channels_last": layout})
