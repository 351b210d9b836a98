"""Building and loading MuseTalk's four networks (spec §1.3, §2).

* UNet: diffusers ``UNet2DConditionModel(**musetalk.json)``; ``musetalkV15/unet.pth`` is a
  plain diffusers-layout state dict and loads strictly.
* VAE: diffusers ``AutoencoderKL`` (sd-vae-ft-mse). Three key layouts are accepted and
  mapped on load: modern diffusers (``to_q/to_k/to_v/to_out.0``), the released
  ``diffusion_pytorch_model.bin`` (``query/key/value/proj_attn``), and the ldm/ComfyUI
  file (``encoder.down.N...``, e.g. vae-ft-mse-840000-ema-pruned.safetensors).
* whisper-tiny encoder: transformers ``WhisperEncoder``; the HF checkpoint's ``model.``
  prefix and its decoder keys are dropped.
* BiSeNet: ours (bisenet.py); ``79999_iter.pth`` loads strictly.

Large networks are built on the meta device and take the checkpoint tensors by
assignment, so a 3.4 GB UNet never exists twice in memory and skips random init.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Callable, Mapping, Optional, Union

import torch

from ..core.checkpoint_io import mismatch_report, read_state_dict, strip_prefix
from ..core.errors import CheckpointError, MissingWeightsError
from ..core.types import ModelBundle
from .bisenet import TINY_BISENET, BiSeNet, BiSeNetConfig

SCALING_FACTOR = 0.18215  # diffusers' AutoencoderKL default; not in sd-vae-ft-mse's json

# musetalkV15/musetalk.json (identical to v1's)
UNET_CONFIG = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
    center_input_sample=False, cross_attention_dim=384,
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=8,
    layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-5, norm_num_groups=32,
    out_channels=4, sample_size=64,
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
)

# stabilityai/sd-vae-ft-mse config.json
VAE_CONFIG = dict(
    act_fn="silu", block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, in_channels=3, latent_channels=4,
    layers_per_block=2, norm_num_groups=32, out_channels=3, sample_size=256,
    up_block_types=["UpDecoderBlock2D"] * 4,
)

# openai/whisper-tiny (encoder part; decoder fields keep transformers' defaults)
WHISPER_CONFIG = dict(
    d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
    num_mel_bins=80, max_source_positions=1500, activation_function="gelu",
    scale_embedding=False, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
)

# Small widths for tests: same topology, runs the whole pipeline in seconds on CPU.
# The UNet's cross-attention width must equal the whisper width (the features' D).
TINY_CONFIGS = dict(
    unet=dict(UNET_CONFIG, block_out_channels=[32, 64], layers_per_block=1,
              down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
              up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
              attention_head_dim=2, cross_attention_dim=32, norm_num_groups=8, sample_size=32),
    vae=dict(VAE_CONFIG, block_out_channels=[8, 8, 16, 16], layers_per_block=1,
             norm_num_groups=4),
    whisper=dict(WHISPER_CONFIG, d_model=32, encoder_attention_heads=2, encoder_ffn_dim=64,
                 decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64),
    parsing=asdict(TINY_BISENET),
)
DEFAULT_CONFIGS = dict(unet=UNET_CONFIG, vae=VAE_CONFIG, whisper=WHISPER_CONFIG,
                       parsing=asdict(BiSeNetConfig()))

StateSource = Union[str, os.PathLike, Mapping[str, torch.Tensor]]


# ---------------------------------------------------------------------------------------
# helpers


def _read(source: StateSource, role: str) -> tuple[dict, str]:
    """A state dict and a name for messages, from a file, an HF folder or a dict."""
    if isinstance(source, Mapping):
        return dict(source), f"the {role} state dict"
    path = os.fspath(source)
    if os.path.isdir(path):
        for name in ("model.safetensors", "diffusion_pytorch_model.safetensors",
                     "pytorch_model.bin", "diffusion_pytorch_model.bin", "unet.pth"):
            if os.path.isfile(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            raise MissingWeightsError(f"no {role} weights file found in the folder {path}")
    sd = read_state_dict(path)
    for wrap in ("state_dict", "model", "module"):  # occasional training-script wrappers
        if len(sd) == 1 and isinstance(sd.get(wrap), Mapping):
            sd = dict(sd[wrap])
    return sd, path


def read_config(source: Optional[str], default: dict) -> dict:
    """A json config file (or a folder with config.json); ``default`` when None."""
    if source is None:
        return dict(default)
    path = os.fspath(source)
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    if not os.path.isfile(path):
        raise MissingWeightsError(f"config file not found: {path}")
    with open(path) as fh:
        cfg = json.load(fh)
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def build_assigned(factory: Callable[[], torch.nn.Module], sd: Mapping[str, torch.Tensor],
                   what: str) -> torch.nn.Module:
    """Build on the meta device and adopt ``sd``'s tensors (strict, readable errors)."""
    with torch.device("meta"):
        module = factory()
    report = mismatch_report(module, sd)
    if report:
        raise CheckpointError(
            f"{what} does not match the {type(module).__name__} network:\n{report}\n"
            "The file is probably a different model or version; download the official file.")
    module.load_state_dict(sd, strict=True, assign=True)
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:  # a non-persistent buffer we would have had to compute
        raise CheckpointError(f"{what}: tensors not provided by the checkpoint: {left[:5]}")
    return module


# ---------------------------------------------------------------------------------------
# the four networks


def build_unet(source: StateSource, config: Optional[dict] = None) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    sd, what = _read(source, "MuseTalk UNet")
    cfg = dict(UNET_CONFIG if config is None else config)
    return build_assigned(lambda: UNet2DConditionModel(**cfg), sd, what).eval()


_OLD_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def vae_to_diffusers(sd: Mapping[str, torch.Tensor], config: dict) -> dict:
    """Map the released / ldm VAE layouts onto diffusers' current key names."""
    if any(".down.0." in k or k.startswith(("first_stage_model.", "vae.")) for k in sd):
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        return convert_ldm_vae_checkpoint(dict(sd), config)
    out = {}
    for k, v in sd.items():
        if ".attentions." in k:
            head, leaf = k.rsplit(".", 1)
            base, name = head.rsplit(".", 1)
            if name in _OLD_ATTN:
                k = f"{base}.{_OLD_ATTN[name]}.{leaf}"
            if leaf == "weight" and v.dim() == 4 and ("to_" in k):
                v = v[:, :, 0, 0]  # 1x1-conv form of a linear weight
        out[k] = v
    return out


def build_vae(source: StateSource, config: Optional[dict] = None) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    sd, what = _read(source, "VAE (sd-vae-ft-mse)")
    cfg = dict(VAE_CONFIG if config is None else config)
    sd = vae_to_diffusers(sd, cfg)
    return build_assigned(lambda: AutoencoderKL(**cfg), sd, what).eval()


def build_whisper(source: StateSource, config: Optional[dict] = None) -> torch.nn.Module:
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    sd, what = _read(source, "whisper-tiny")
    sd = strip_prefix(sd, "model.")  # WhisperForConditionalGeneration layout
    if any(k.startswith("encoder.") for k in sd):
        sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    cfg = WhisperConfig(**dict(WHISPER_CONFIG if config is None else config))
    cfg._attn_implementation = "sdpa"  # what the reference ran; eager differs by rounding
    # small: build normally (transformers' init under meta is version-sensitive)
    enc = WhisperEncoder(cfg)
    report = mismatch_report(enc, sd)
    if report:
        raise CheckpointError(f"{what} does not match the whisper-tiny encoder:\n{report}\n"
                              "Use the HF openai/whisper-tiny files (config.json + "
                              "pytorch_model.bin or model.safetensors).")
    enc.load_state_dict(sd, strict=True)
    return enc.eval()


def build_parsing(source: StateSource, config: Optional[dict] = None) -> BiSeNet:
    sd, what = _read(source, "face-parsing BiSeNet (79999_iter.pth)")
    sd = strip_prefix(sd, "module.")
    cfg = BiSeNetConfig(**(config or {}))
    return build_assigned(lambda: BiSeNet(cfg), sd, what).float().eval()


def load_musetalk(files: Mapping[str, StateSource], device: Union[str, torch.device] = "cpu",
                  dtype: torch.dtype = torch.float32, configs: Optional[Mapping] = None) -> ModelBundle:
    """Load MuseTalk v1.5: ``files`` maps roles unet / vae / whisper / parsing to a file,
    an HF folder, or an in-memory state dict; optional ``unet_config`` / ``vae_config`` /
    ``whisper_config`` json paths override the built-in official configs, and ``configs``
    (role -> dict) overrides both (tiny test sizes).

    UNet, VAE and whisper run in ``dtype`` (fp16 on GPU, as the realtime reference);
    BiSeNet stays float32 because its argmax feeds exact mask thresholds and it is small.
    """
    configs = dict(configs or {})
    missing = [r for r in ("unet", "vae", "whisper", "parsing") if r not in files]
    if missing:
        raise MissingWeightsError(
            f"MuseTalk needs weights for: {', '.join(missing)} (unet: musetalkV15/unet.pth, "
            "vae: sd-vae/diffusion_pytorch_model.bin, whisper: openai/whisper-tiny folder, "
            "parsing: face-parse-bisent/79999_iter.pth)")
    for role, default in DEFAULT_CONFIGS.items():
        if role not in configs:
            cfg_src = files.get(f"{role}_config")
            if cfg_src is None and role == "whisper" and isinstance(files["whisper"], (str, os.PathLike)) \
                    and os.path.isdir(files["whisper"]):
                cfg_src = files["whisper"]
            configs[role] = read_config(cfg_src, default) if role != "parsing" else default
    device = torch.device(device)
    nets = {
        "unet": place_module(build_unet(files["unet"], configs["unet"]), device, dtype),
        "vae": place_module(build_vae(files["vae"], configs["vae"]), device, dtype),
        "whisper": place_module(build_whisper(files["whisper"], _whisper_fields(configs["whisper"])),
                          device, dtype),
        "parsing": place_module(build_parsing(files["parsing"], configs["parsing"]), device, torch.float32),
    }
    for net in nets.values():
        net.requires_grad_(False)
    paths = {k: (os.fspath(v) if isinstance(v, (str, os.PathLike)) else "<state dict>")
             for k, v in files.items()}
    return ModelBundle(family="musetalk", nets=nets, device=device, dtype=dtype, files=paths,
                       extra={"configs": configs, "scaling_factor": SCALING_FACTOR})


def place_module(net: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    # cast only when needed: diffusers warns on every dtype .to(), even a no-op one
    net = net.to(device)
    return net if next(net.parameters()).dtype == dtype else net.to(dtype)


def _whisper_fields(cfg: dict) -> dict:
    """Keep what WhisperConfig understands from an HF config.json (drops architectures...)."""
    drop = {"architectures", "torch_dtype", "transformers_version", "model_type"}
    return {k: v for k, v in cfg.items() if k not in drop}
