"""Loading JoyVASA's files into a ``ModelBundle(family="joyvasa")``.

Files (HuggingFace ``jdh-algo/JoyVASA``):
* ``motion_generator/motion_generator_hubert_chinese.pt`` (414 MB): a pickle
  ``{'args': argparse.Namespace, 'model': state_dict}``; ``args.data_root`` is a
  ``pathlib.PosixPath``. It is read by the pack's restricted archive reader, which admits
  torch's tensor records, ``OrderedDict``, ``argparse.Namespace`` and the pathlib paths
  (as ``PurePosixPath``, so the file also loads on Windows), and refuses anything else.
  ``convert_to_safetensors`` writes a ``.safetensors`` + ``.json`` pair next to it once;
  the loader then prefers that pair.
* ``motion_template/motion_template.pkl`` (3 kB): de-normalisation statistics, read by
  the restricted config unpickler (see template.py).

Every key is checked (the reference loads with ``strict=False``, so a wrong file or
layer count would silently leave random layers). The one accepted exception is
``denoising_net.TE.pe``: the reference drops the file's copy and uses the table its
constructor builds, and so does this loader (it is a constant sinusoidal table).

How the checkpoint arguments are used (the reference passes only motion_feat_dim,
n_motions, n_prev_motions, feature_dim, audio_model and n_diff_steps to its constructor;
its denoiser always has the class defaults 8 layers, 8 heads, FFN ×4, diagonal mask,
sinusoidal PE and no indicator channel):
* those six, fps, pad_mode, target, diff_schedule, architecture and n_heads are used;
* n_layers, mlp_ratio, use_indicator, align_mask_width and the PE kind are read from
  the weights' own shapes, and a disagreeing argument is reported in the log (the
  released file says ``n_layers=6`` and ``use_indicator=True`` but holds 8 layers
  without an indicator channel, because those arguments never reached the network).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import re
from dataclasses import replace
from typing import Mapping, Optional

import torch

from ..core.checkpoint_io import (load_state_dict_strict, load_torch_archive, read_state_dict,
                                  require_file)
from ..core.errors import CheckpointError
from ..core.types import ModelBundle
from .config import AUDIO_MODELS, CHINESE_HUBERT_BASE, JoyVASAConfig
from .model import DitTalkingHead
from .template import MotionTemplate, load_template

log = logging.getLogger("talking_head")

FILES = {
    "motion_generator": "motion_generator/motion_generator_hubert_chinese.pt",
    "template": "motion_template/motion_template.pkl",
}
HF_REPO = "jdh-algo/JoyVASA"
TE_KEY = "denoising_net.TE.pe"

# what the released .pt pickles besides tensors, and what stands in for it
CHECKPOINT_GLOBALS = {
    ("argparse", "Namespace"): argparse.Namespace,
    ("pathlib", "PosixPath"): pathlib.PurePosixPath,
    ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
    ("pathlib._local", "PosixPath"): pathlib.PurePosixPath,       # pickled by Python 3.13+
    ("pathlib._local", "PurePosixPath"): pathlib.PurePosixPath,
}

# weight-norm parameter names: torch >= 2.1 parametrizations vs the older hooks
WEIGHT_NORM_NAMES = (("parametrizations.weight.original0", "weight_g"),
                     ("parametrizations.weight.original1", "weight_v"))


def _require(role: str, path) -> str:
    return require_file(path, f"JoyVASA {role}", HF_REPO, FILES[role], "joyvasa")


# ---------------------------------------------------------------------------------------
# reading


def _plain(value):
    """Checkpoint argument values as JSON-friendly data."""
    if isinstance(value, pathlib.PurePath):
        return value.as_posix()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def converted_pair(path) -> Optional[tuple]:
    """(.safetensors, .json) written by :func:`convert_to_safetensors` next to ``path``."""
    stem = os.path.splitext(os.fspath(path))[0]
    pair = (stem + ".safetensors", stem + ".json")
    return pair if all(os.path.isfile(p) for p in pair) else None


def read_checkpoint(path) -> tuple:
    """-> (args dict, state dict) from the official .pt, or from its converted pair when
    present (or when ``path`` is the converted .safetensors itself)."""
    path = os.fspath(path)
    pair = converted_pair(path)
    if path.endswith(".safetensors") or pair:
        st, js = pair or (path, os.path.splitext(path)[0] + ".json")
        args = {}
        if os.path.isfile(js):
            with open(js, encoding="utf-8") as fh:
                args = json.load(fh).get("args", {})
        return args, read_state_dict(st)
    obj = load_torch_archive(path, CHECKPOINT_GLOBALS)
    if not (isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping)):
        raise CheckpointError(f"{path} is not a JoyVASA motion generator checkpoint (expected "
                              "{'args': ..., 'model': state_dict}); use "
                              f"{FILES['motion_generator']} from {HF_REPO}")
    args = obj.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    return {k: _plain(v) for k, v in args.items()}, dict(obj["model"])


def convert_to_safetensors(pt_path, out_dir=None) -> tuple:
    """One-time conversion of the official .pt: writes ``<name>.safetensors`` (the state
    dict, keys unchanged) and ``<name>.json`` (the arguments) into ``out_dir`` (default:
    next to the .pt, where the loader looks first). Returns both paths."""
    from safetensors.torch import save_file

    pt_path = _require("motion_generator", pt_path)
    args, sd = read_checkpoint(pt_path)
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.dirname(os.path.abspath(pt_path))
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, os.path.splitext(os.path.basename(pt_path))[0])
    tensors, seen = {}, set()
    for key, value in sd.items():
        ptr = value.untyped_storage().data_ptr()
        # safetensors refuses tensors that share memory: copy the second and later ones
        tensors[key] = value.contiguous() if ptr not in seen and value.is_contiguous() else value.clone()
        seen.add(ptr)
    # written under temporary names and moved in place: the loader only takes a complete pair
    save_file(tensors, stem + ".safetensors.partial")
    with open(stem + ".json.partial", "w", encoding="utf-8") as fh:
        json.dump({"format": "joyvasa-motion-generator", "source": os.path.basename(pt_path),
                   "args": args}, fh, indent=1, sort_keys=True)
    os.replace(stem + ".safetensors.partial", stem + ".safetensors")
    os.replace(stem + ".json.partial", stem + ".json")
    return stem + ".safetensors", stem + ".json"


# ---------------------------------------------------------------------------------------
# configuration and key checks


def _count_layers(sd: Mapping, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd for m in [pattern.match(k)] if m}
    return max(found) + 1 if found else 0


def _shape(sd: Mapping, key: str):
    return tuple(sd[key].shape) if key in sd else None


def config_from_checkpoint(args: Mapping, sd: Mapping, audio: Optional[Mapping] = None,
                           where: str = "checkpoint") -> JoyVASAConfig:
    """The network configuration for ``sd`` (see the module docstring for the rules).
    ``audio``: HuBERT config fields (default: the args' ``audio_encoder_config`` if any,
    else chinese-hubert-base)."""
    a = {k: v for k, v in dict(args).items() if v is not None}
    base = JoyVASAConfig()

    def arg(name, default):
        return type(default)(a[name]) if name in a else default

    if a.get("architecture", "decoder") != "decoder":
        raise CheckpointError(f"{where}: architecture {a['architecture']!r} is not supported "
                              "(JoyVASA's released model is a transformer decoder)")
    audio_model = str(a.get("audio_model", base.audio_model))
    if audio_model not in AUDIO_MODELS:
        raise CheckpointError(f"{where}: audio model {audio_model!r} is not supported "
                              f"(supported: {', '.join(AUDIO_MODELS)})")
    if "denoising_net.PE" in sd:
        raise CheckpointError(f"{where}: a learnable positional encoding is not supported "
                              "(the released model uses the sinusoidal one)")
    start = _shape(sd, "start_motion_feat")
    feature_dim = arg("feature_dim", (_shape(sd, "audio_feature_map.weight") or (base.feature_dim,))[0])
    motion_dim = arg("motion_feat_dim", start[-1] if start else base.motion_feat_dim)
    n_prev = arg("n_prev_motions", start[1] if start else base.n_prev_motions)
    betas = _shape(sd, "diffusion_sched.betas")
    n_steps = arg("n_diff_steps", betas[0] - 1 if betas else base.n_diff_steps)

    # structure the reference never took from the arguments: the weights decide
    n_layers = _count_layers(sd, "denoising_net.transformer.layers.") or base.n_layers
    lin1 = _shape(sd, "denoising_net.transformer.layers.0.linear1.weight")
    mlp_ratio = lin1[0] // feature_dim if lin1 else base.mlp_ratio
    proj = _shape(sd, "denoising_net.feature_proj.weight")
    use_indicator = bool(proj and proj[1] == motion_dim + 1)
    mask = "denoising_net.alignment_mask" in sd
    pe = _shape(sd, "denoising_net.PE.pe")
    for name, used, why in (("n_layers", n_layers, "decoder layers in the weights"),
                            ("mlp_ratio", mlp_ratio, "FFN width in the weights"),
                            ("use_indicator", use_indicator, "indicator channel in the weights")):
        if name in a and type(used)(a[name]) != used:
            log.info("JoyVASA %s: argument %s=%r disagrees with the %s (%r); using the weights "
                     "(the reference never passes %s to its network)",
                     where, name, a[name], why, used, name)

    n_heads = arg("n_heads", base.n_heads)
    if feature_dim % n_heads:
        raise CheckpointError(f"{where}: n_heads={n_heads} does not divide feature_dim={feature_dim}")
    target = str(a.get("target", base.target))
    if target not in ("sample", "noise"):
        raise CheckpointError(f"{where}: unknown diffusion target {target!r} (sample or noise)")
    pad_mode = str(a.get("pad_mode", base.pad_mode))
    if pad_mode not in ("zero", "replicate"):
        raise CheckpointError(f"{where}: unknown pad mode {pad_mode!r} (zero or replicate)")
    audio = dict(audio or a.get("audio_encoder_config") or CHINESE_HUBERT_BASE)
    return replace(base, motion_feat_dim=motion_dim, n_motions=arg("n_motions", base.n_motions),
                   n_prev_motions=n_prev, feature_dim=feature_dim, n_layers=n_layers,
                   n_heads=n_heads, mlp_ratio=mlp_ratio, align_mask_width=1 if mask else 0,
                   use_indicator=use_indicator,
                   te_rows=max(base.te_rows, n_steps + 1), pe_rows=pe[1] if pe else base.pe_rows,
                   n_diff_steps=n_steps, target=target, fps=arg("fps", base.fps),
                   pad_mode=pad_mode, audio_model=audio_model, audio=audio)


def align_weight_norm(sd: Mapping, expected) -> dict:
    """Rename weight-norm keys between ``...parametrizations.weight.original0/1`` and
    ``...weight_g/_v`` (either direction) to the names in ``expected``."""
    expected = set(expected)
    out = {}
    for key, value in sd.items():
        if key not in expected:
            for a, b in WEIGHT_NORM_NAMES:
                for old, new in ((a, b), (b, a)):
                    if key.endswith("." + old) and key[: -len(old)] + new in expected:
                        key = key[: -len(old)] + new
        out[key] = value
    return out


def load_generator_weights(model: DitTalkingHead, sd: Mapping, where: str) -> DitTalkingHead:
    """Strictly load ``sd`` into ``model``: every key, no extra, same shapes; the file's
    TE.pe (if any) is replaced by the model's own table."""
    own = model.state_dict()
    sd = align_weight_norm({k: v for k, v in sd.items() if k != TE_KEY}, own)
    sd[TE_KEY] = own[TE_KEY]
    return load_state_dict_strict(model, sd, where)


def load_motion_generator(path, device="cpu", audio: Optional[Mapping] = None) -> DitTalkingHead:
    """The official .pt (or its converted pair) -> an eval-mode :class:`DitTalkingHead` (fp32)."""
    path = _require("motion_generator", path)
    args, sd = read_checkpoint(path)
    cfg = config_from_checkpoint(args, sd, audio, where=path)
    model = DitTalkingHead(cfg, schedule=str(args.get("diff_schedule") or "cosine"),
                           empty_encoder=True)
    load_generator_weights(model, sd, path)
    return model.to(device=device, dtype=torch.float32).eval()


def load_joyvasa(paths: Mapping, device="cpu", audio: Optional[Mapping] = None) -> ModelBundle:
    """{"motion_generator": path, "template": path} -> ModelBundle with nets
    "generator" (:class:`DitTalkingHead`) and "template" (:class:`MotionTemplate`). The
    generator always keeps fp32 weights; it runs under the run context's autocast."""
    device = torch.device(device)
    model = load_motion_generator(paths.get("motion_generator"), device, audio)
    template: MotionTemplate = load_template(_require("template", paths.get("template")))
    return ModelBundle("joyvasa", {"generator": model, "template": template}, device,
                       torch.float32, files={k: os.fspath(v) for k, v in paths.items() if v})
