"""Sizes of JoyVASA's motion generator (``DitTalkingHead``) and of its HuBERT encoder.

The released checkpoint stores its training arguments next to the weights; the loader
turns them (and the weights' own shapes) into a :class:`JoyVASAConfig`
(see ``loader.config_from_checkpoint``). ``OFFICIAL`` is what the released file holds;
``TINY`` is a small configuration of the same architecture for fast tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

# TencentGameMate/chinese-hubert-base config.json, architecture fields (the released
# checkpoint carries these weights under ``audio_encoder.*`` but not this config).
CHINESE_HUBERT_BASE = MappingProxyType({
    "model_type": "hubert",
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
    "conv_dim": (512,) * 7, "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "conv_stride": (5, 2, 2, 2, 2, 2, 2), "conv_bias": False,
    "num_feat_extract_layers": 7, "feat_extract_norm": "group",
    "feat_extract_activation": "gelu", "feat_proj_layer_norm": True,
    "feat_proj_dropout": 0.0, "do_stable_layer_norm": False,
    "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
    "hidden_dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.1,
    "final_dropout": 0.1, "layerdrop": 0.1,
    # mask_time_prob > 0 makes HubertModel own ``masked_spec_embed`` (a checkpoint key,
    # unused at inference)
    "apply_spec_augment": True, "mask_time_prob": 0.05, "mask_time_length": 10,
    "mask_time_min_masks": 2, "mask_feature_prob": 0.0, "mask_feature_length": 10,
    "mask_feature_min_masks": 0, "use_weighted_layer_sum": False, "vocab_size": 32,
    "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
})

# a HuBERT small enough for tests: the same CNN strides (320 samples per 50 Hz frame)
TINY_HUBERT = MappingProxyType({
    **CHINESE_HUBERT_BASE,
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "conv_dim": (16,) * 7,
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4,
})

AUDIO_MODELS = ("hubert_zh", "hubert_zh_ori", "hubert")


@dataclass(frozen=True)
class JoyVASAConfig:
    """Everything that shapes the network and its windows.

    motion_feat_dim: 70 = exp 63 | scale | t 3 | pitch yaw roll.
    n_motions / n_prev_motions: frames per window and the frames it is conditioned on.
    feature_dim, n_layers, n_heads, mlp_ratio: the denoiser's transformer decoder.
    align_mask_width: 1 = token i sees only audio frame i (0 = no mask).
    use_indicator: the denoiser takes a 71st "real frame" channel (the released model
        does not: its ``DenoisingNetwork`` is built without it).
    te_rows / pe_rows: rows of the sinusoidal step / position tables (501 because the
        reference builds the step table for its default 500 steps, 600 its default).
    n_diff_steps: diffusion steps of the schedule (the sampler runs all of them).
    target: "sample" (the network predicts x0) or "noise".
    fps / sample_rate: motion frames and audio samples per second.
    pad_mode: how the last window's audio is padded ("zero" or "replicate").
    audio_model / audio: which HuBERT and its transformers config fields.
    """

    motion_feat_dim: int = 70
    n_motions: int = 100
    n_prev_motions: int = 25
    feature_dim: int = 256
    n_layers: int = 8
    n_heads: int = 8
    mlp_ratio: int = 4
    align_mask_width: int = 1
    use_indicator: bool = False
    te_rows: int = 501
    pe_rows: int = 600
    n_diff_steps: int = 50
    target: str = "sample"
    fps: float = 25.0
    sample_rate: int = 16000
    pad_mode: str = "zero"
    audio_model: str = "hubert_zh"
    audio: dict = field(default_factory=lambda: dict(CHINESE_HUBERT_BASE), hash=False)

    @property
    def audio_hidden(self) -> int:
        return int(self.audio["hidden_size"])

    @property
    def n_tokens(self) -> int:
        return self.n_prev_motions + self.n_motions

    @property
    def samples_per_frame(self) -> float:
        return self.sample_rate / self.fps

    @property
    def window_samples(self) -> int:
        return round(self.samples_per_frame * self.n_motions)


OFFICIAL = JoyVASAConfig()
TINY = JoyVASAConfig(n_motions=20, n_prev_motions=5, feature_dim=32, n_layers=2, n_heads=4,
                     te_rows=11, pe_rows=40, n_diff_steps=10, audio=dict(TINY_HUBERT))
