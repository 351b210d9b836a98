"""Loading Ditto's files into a ``ModelBundle(family="ditto")``.

Roles (paths relative to the ``ditto-talkinghead/checkpoints`` download):
 * ``lmdm``   ditto_pytorch/models/lmdm_v0.4_hubert.pth   ({'model_state_dict': sd})
 * ``cfg``    ditto_cfg/v0.4_hubert_cfg_pytorch.pkl        (restricted unpickler)
 * ``hubert`` ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx (onnxruntime, lazy)
 * ``stitch`` ditto_pytorch/models/stitch_network.pth      ({'retarget_shoulder': {'module.'+k}})
The LivePortrait renderer networks are loaded by ``pipelines.liveportrait``.

The LMDM always runs in float32 (as the reference): its 62 ms per window is small next to
rendering and diffusion sampling is sensitive to precision. ``dtype`` is recorded for the
render stages.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import torch

from ..core.checkpoint_io import load_state_dict_strict, read_state_dict, require_file, strip_prefix
from ..liveportrait.stitching import STITCH, StitchingMLP
from ..core.types import ModelBundle
from .config import DittoConfig
from .hubert import HubertOnnx
from .lmdm import OFFICIAL, LMDMConfig, MotionDecoder, lmdm_state_dict_from_file

FILES = {
    "lmdm": "ditto_pytorch/models/lmdm_v0.4_hubert.pth",
    "cfg": "ditto_cfg/v0.4_hubert_cfg_pytorch.pkl",
    "hubert": "ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx",
    "stitch": "ditto_pytorch/models/stitch_network.pth",
}
HF_REPO = "digital-avatar/ditto-talkinghead"


def _require(role: str, path) -> str:
    return require_file(path, f"Ditto {role}", HF_REPO, f"checkpoints/{FILES[role]}", "ditto")


def load_lmdm(path, cfg: DittoConfig, device="cpu",
              config: Optional[LMDMConfig] = None) -> MotionDecoder:
    path = _require("lmdm", path)
    config = config or dataclasses.replace(OFFICIAL, nfeats=cfg.motion_feat_dim,
                                           seq_len=cfg.seq_frames, cond_dim=cfg.audio_feat_dim)
    model = MotionDecoder(config)
    load_state_dict_strict(model, lmdm_state_dict_from_file(read_state_dict(path)), path)
    return model.to(device=device, dtype=torch.float32).eval()


def load_stitch(path, device="cpu") -> StitchingMLP:
    path = _require("stitch", path)
    sd = read_state_dict(path)
    if "retarget_shoulder" in sd:           # LivePortrait's combined retargeting file
        sd = sd["retarget_shoulder"]
    net = StitchingMLP(STITCH)
    load_state_dict_strict(net, strip_prefix(sd, "module."), path)
    return net.to(device=device, dtype=torch.float32).eval()


def load_ditto(files: dict, device="cpu", dtype=torch.float32,
               lmdm_config: Optional[LMDMConfig] = None) -> ModelBundle:
    """files: {"lmdm": path, "cfg": path|DittoConfig|None, "hubert": path|session|None,
    "stitch": path|None}. Without a cfg the code defaults apply (no emotion table, blink
    template, clip range or reference identity: motion is less like the release)."""
    device = torch.device(device)
    cfg = files.get("cfg")
    if cfg is None:
        cfg = DittoConfig()
    elif not isinstance(cfg, DittoConfig):
        cfg = DittoConfig.from_pickle(_require("cfg", cfg))
    nets = {"cfg": cfg, "lmdm": load_lmdm(files.get("lmdm"), cfg, device, lmdm_config)}
    hub = files.get("hubert")
    nets["hubert"] = None if hub is None else (hub if callable(hub) and not hasattr(hub, "run")
                                              else HubertOnnx(hub, device))
    nets["stitch"] = load_stitch(files["stitch"], device) if files.get("stitch") else None
    paths = {k: os.fspath(v) for k, v in files.items() if isinstance(v, (str, os.PathLike))}
    return ModelBundle("ditto", nets, device, dtype, files=paths)
