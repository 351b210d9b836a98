"""A whole models folder of fake checkpoints, tiny-sized, in the released file layouts.

End-to-end tests point $TALKING_HEAD_MODELS at it and set the loaders' network sizes to the
tiny ones (``use`` in process, tests/tiny_cli.py for the command line), so the real
registry lookups, loaders and file formats run, on networks small enough for CI.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil

import torch

from tests.fakes import entries_of, keyed_state_dict, save, write_fake
from tests.paths import SHARED, require_shared


def _path(root: str, family: str, local: str) -> str:
    folder = {"aux": "talking_head_aux"}.get(family, family)
    path = os.path.join(root, folder, local)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def write_aux(root: str) -> None:
    """MediaPipe's landmarker and detector (real files, from ../shared)."""
    require_shared()
    from talking_head.pipelines.core import weights

    for w in weights.entries("aux", "mediapipe"):
        shutil.copy(os.path.join(SHARED, "models", "mediapipe", os.path.basename(w.local)),
                    _path(root, "aux", w.local))


def write_liveportrait(root: str, layout: str = "official") -> None:
    from talking_head.pipelines.liveportrait import loader as L
    from tests.test_liveportrait_loading import write_layout

    if layout == "ditto":
        write_layout("ditto", os.path.join(root, "ditto", "ditto_pytorch"), L.TINY_RENDERER)
    elif layout == "safetensors":
        write_layout("safetensors", os.path.join(root, "liveportrait"), L.TINY_RENDERER)
    else:
        write_layout("official", os.path.join(root, "liveportrait", "liveportrait"), L.TINY_RENDERER)


def write_ditto(root: str) -> None:
    """Tiny LMDM ({'model_state_dict': sd}), a cfg pickle of the released structure, a
    stand-in HuBERT ONNX with the released input/output names, and Ditto's renderer copies."""
    from talking_head.pipelines.ditto.lmdm import TINY, MotionDecoder, rotary_freqs
    from tests.test_ditto_audio import export_standin
    from tests.test_ditto_config import synthetic_cfg

    net = MotionDecoder(TINY)
    # the rotary tables are constants stored in the checkpoint (the released file has them)
    freqs = {k: rotary_freqs(2 * v.shape[0]) for k, v in net.state_dict().items() if k.endswith("rotary.freqs")}
    sd = keyed_state_dict(entries_of(net), keep=freqs)
    save({"model_state_dict": sd}, _path(root, "ditto", "ditto_pytorch/models/lmdm_v0.4_hubert.pth"))
    cfg = synthetic_cfg(online=False)
    with open(_path(root, "ditto", "ditto_cfg/v0.4_hubert_cfg_pytorch.pkl"), "wb") as fh:
        pickle.dump(cfg, fh)
    export_standin(_path(root, "ditto", "ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx"))
    write_liveportrait(root, "ditto")


def write_musetalk(root: str) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperModel

    from talking_head.pipelines.musetalk.models import TINY_CONFIGS
    from talking_head.pipelines.musetalk.bisenet import BiSeNet, BiSeNetConfig

    write_fake(None, _path(root, "musetalk", "musetalkV15/unet.pth"),
               entries=entries_of(UNet2DConditionModel(**TINY_CONFIGS["unet"])))
    with open(_path(root, "musetalk", "musetalkV15/musetalk.json"), "w") as fh:
        json.dump(TINY_CONFIGS["unet"], fh)
    write_fake(None, _path(root, "musetalk", "sd-vae/diffusion_pytorch_model.safetensors"),
               entries=entries_of(AutoencoderKL(**TINY_CONFIGS["vae"])))
    with open(_path(root, "musetalk", "sd-vae/config.json"), "w") as fh:
        json.dump(dict(TINY_CONFIGS["vae"], _class_name="AutoencoderKL"), fh)
    wcfg = dict(TINY_CONFIGS["whisper"], model_type="whisper", architectures=["WhisperForConditionalGeneration"])
    write_fake(None, _path(root, "musetalk", "whisper/model.safetensors"), prefix="model.",
               entries=entries_of(WhisperModel(WhisperConfig(**TINY_CONFIGS["whisper"]))))
    with open(_path(root, "musetalk", "whisper/config.json"), "w") as fh:
        json.dump(wcfg, fh)
    with open(_path(root, "musetalk", "whisper/preprocessor_config.json"), "w") as fh:
        json.dump({"feature_size": 80, "sampling_rate": 16000, "hop_length": 160, "n_fft": 400,
                   "chunk_length": 30, "padding_value": 0.0}, fh)
    write_fake(None, _path(root, "musetalk", "face-parse-bisent/79999_iter.pth"),
               keep=skin_everywhere(BiSeNet(BiSeNetConfig(**TINY_CONFIGS["parsing"]))),
               entries=entries_of(BiSeNet(BiSeNetConfig(**TINY_CONFIGS["parsing"]))))


def skin_everywhere(parser) -> dict:
    """Fused-head tensors that make a parser label every pixel skin: its last ReLU block
    outputs 1 everywhere (BN scale 0, shift 1) and only the skin row of the classifier
    reads it. With keyed weights alone the argmax is arbitrary and the jaw mask comes out
    empty, so MuseTalk's paste-back would never show in a test."""
    from talking_head.pipelines.musetalk.blending import SKIN

    sd = parser.state_dict()
    head = sd["conv_out.conv_out.weight"]
    out = {"conv_out.conv.bn.weight": torch.zeros_like(sd["conv_out.conv.bn.weight"]),
           "conv_out.conv.bn.bias": torch.ones_like(sd["conv_out.conv.bn.bias"]),
           "conv_out.conv.bn.running_mean": torch.zeros_like(sd["conv_out.conv.bn.running_mean"]),
           "conv_out.conv.bn.running_var": torch.ones_like(sd["conv_out.conv.bn.running_var"]),
           "conv_out.conv_out.weight": torch.zeros_like(head)}
    out["conv_out.conv_out.weight"][SKIN] = 1.0
    return out


def write_joyvasa(root: str) -> None:
    """JoyVASA's released .pt (pickled args with a PosixPath, tiny sizes carried in the
    args, which the loader reads them from) and its motion template pickle."""
    from talking_head.pipelines.core import weights
    from tests.fake_joyvasa import write_template, write_tiny

    files = {e.role: e.local for e in weights.entries("joyvasa", "hubert_chinese")}
    write_tiny(_path(root, "joyvasa", files["motion_generator"]), seed=7)
    write_template(_path(root, "joyvasa", files["template"]), seed=7)


def write_all(root: str, families=("aux", "liveportrait", "ditto", "musetalk", "joyvasa")) -> str:
    writers = {"aux": write_aux, "liveportrait": write_liveportrait, "ditto": write_ditto,
               "musetalk": write_musetalk, "joyvasa": write_joyvasa}
    for family in families:
        writers[family](root)
    return root


def tiny_sizes() -> dict:
    """The loaders' network sizes for the fakes written here (app.models.SIZES)."""
    from talking_head.pipelines.ditto.lmdm import TINY
    from talking_head.pipelines.liveportrait.loader import TINY_RENDERER
    from talking_head.pipelines.musetalk.models import TINY_CONFIGS

    return {"liveportrait": TINY_RENDERER, "ditto": TINY, "musetalk": TINY_CONFIGS}


def use(monkeypatch, root: str) -> None:
    """Point the pack (this process and subprocesses) at ``root`` with tiny sizes."""
    from talking_head.pipelines.app import models

    monkeypatch.setenv("TALKING_HEAD_MODELS", root)
    monkeypatch.setenv("TALKING_HEAD_STANDALONE", "1")
    monkeypatch.setattr(models, "SIZES", tiny_sizes())
    models._CACHE.clear()
    torch.manual_seed(0)
