"""Fake JoyVASA files in the released layouts, so the real loading code runs end to end.

* :func:`write_released_pt`: ``torch.save({'args': Namespace(..., data_root=PosixPath('data/')),
  'model': state_dict})``, the container of ``motion_generator_hubert_chinese.pt``;
* :func:`golden_state_dict`: the full-size keyed weights of a golden set (its base seed,
  its constant buffers from ``weights_keep.safetensors``), all 378 keys;
* :func:`tiny_checkpoint` / :func:`write_tiny`: the same architecture at test size
  (``TINY``), its HuBERT config carried in the arguments as ``audio_encoder_config``;
* :func:`template_dict` / :func:`write_template`: a plausible ``motion_template.pkl``
  (45 float32 arrays, as JoyVASA's data preparation writes it).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import pickle
from collections import OrderedDict
from dataclasses import asdict

import numpy as np
import torch

MANIFEST = "joyvasa_manifest_motion_generator.json"
TEMPLATE_PARTS = {"scale": 1, "R": 9, "t": 3, "exp": 63, "pitch": 1, "yaw": 1, "roll": 1,
                  "lip": 1, "eyes": 2}


def namespace(args: dict) -> argparse.Namespace:
    """Checkpoint arguments as train.py pickles them (data_root a PosixPath)."""
    args = dict(args)
    root = args.pop("data_root", "data/")
    if isinstance(root, str) and root.startswith("PosixPath("):
        root = root[len("PosixPath('"):-2]
    return argparse.Namespace(**args, data_root=pathlib.PosixPath(root))


def write_released_pt(path, state_dict: dict, args: dict) -> str:
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    torch.save({"args": namespace(args), "model": OrderedDict(state_dict)}, path)
    return os.fspath(path)


def golden_state_dict(gs) -> dict:
    """The 378 keyed tensors of golden set ``gs`` (tests.goldens.GoldenSet)."""
    from tests.fakes import manifest_entries

    keep = gs.tensors("weights_keep")
    return gs.keyed(manifest_entries(MANIFEST), keep=keep)


def tiny_checkpoint(seed: int = 0) -> tuple:
    """(args, state dict) of the TINY configuration with seeded plausible weights."""
    from talking_head.pipelines.joyvasa import TINY, DitTalkingHead
    from tests.fakes import seeded_init_

    torch.manual_seed(seed)
    model = DitTalkingHead(TINY)
    buffers = {k: v.clone() for k, v in model.state_dict().items()
               if k.startswith("diffusion_sched.") or k.endswith(".pe") or k.endswith("mask")}
    seeded_init_(model, seed)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd.update(buffers)                        # constant tables stay what they are
    cfg = asdict(TINY)
    args = {k: cfg[k] for k in ("motion_feat_dim", "n_motions", "n_prev_motions", "feature_dim",
                                "n_diff_steps", "fps", "pad_mode", "target", "n_heads")}
    args.update(audio_model="hubert_zh", use_indicator=True, n_layers=6, architecture="decoder",
                diff_schedule="cosine", audio_encoder_config=dict(TINY.audio))
    return args, sd


def write_tiny(path, seed: int = 0) -> str:
    args, sd = tiny_checkpoint(seed)
    return write_released_pt(path, sd, args)


def template_dict(seed: int = 0) -> dict:
    """45 float32 arrays {mean,std,min,max,abs_max}_{part}; plausible LivePortrait ranges."""
    rng = np.random.default_rng(seed)
    centre = {"scale": 1.0, "t": 0.0, "pitch": 0.0, "yaw": 0.0, "roll": 0.0}
    half = {"scale": 0.3, "t": 0.05, "pitch": 25.0, "yaw": 35.0, "roll": 20.0}
    out = {}
    for part, n in TEMPLATE_PARTS.items():
        c, h = centre.get(part, 0.0), half.get(part, 0.02)
        mean = (c + 0.1 * h * rng.standard_normal(n)).astype(np.float32)
        out[f"mean_{part}"] = mean
        out[f"std_{part}"] = (0.3 * h * (1 + rng.random(n))).astype(np.float32)
        out[f"min_{part}"] = (mean - h).astype(np.float32)
        out[f"max_{part}"] = (mean + h).astype(np.float32)
        out[f"abs_max_{part}"] = (np.abs(mean) + h).astype(np.float32)
    return out


def write_template(path, seed: int = 0, data: dict = None) -> str:
    with open(path, "wb") as fh:
        pickle.dump(template_dict(seed) if data is None else data, fh)
    return os.fspath(path)
