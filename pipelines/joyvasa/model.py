"""``DitTalkingHead``: the whole motion generator of the checkpoint (378 keys).

Parts and their checkpoint prefixes:
* ``audio_encoder.*``: transformers ``HubertModel`` (chinese-hubert-base);
* ``audio_feature_map``: Linear(768 -> feature_dim) after the encoder;
* ``start_motion_feat`` / ``start_audio_feat``: learned "previous" frames of window 0;
* ``null_audio_feat``: the learned unconditional audio token for classifier-free guidance;
* ``denoising_net.*`` (:mod:`.denoiser`) and ``diffusion_sched.*`` (:mod:`.schedule`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .audio_encoder import build_hubert, hubert_hidden
from .config import JoyVASAConfig
from .denoiser import DenoisingNetwork
from .schedule import DiffusionSchedule


class DitTalkingHead(nn.Module):
    def __init__(self, cfg: JoyVASAConfig, schedule: str = "cosine", empty_encoder: bool = False):
        super().__init__()
        self.cfg = cfg
        d = cfg.feature_dim
        self.audio_encoder = build_hubert(cfg.audio, empty=empty_encoder)
        self.audio_feature_map = nn.Linear(cfg.audio_hidden, d)
        self.start_audio_feat = nn.Parameter(torch.zeros(1, cfg.n_prev_motions, d))
        self.start_motion_feat = nn.Parameter(torch.zeros(1, cfg.n_prev_motions, cfg.motion_feat_dim))
        self.null_audio_feat = nn.Parameter(torch.zeros(1, 1, d))
        self.denoising_net = DenoisingNetwork(cfg)
        self.diffusion_sched = DiffusionSchedule(cfg.n_diff_steps, schedule)
        self.eval()

    def extract_audio_feature(self, audio: torch.Tensor, frame_num: Optional[int] = None,
                              trace: Optional[dict] = None, check=None) -> torch.Tensor:
        """(N, samples) 16 kHz -> (N, frame_num, feature_dim) (``frame_num`` defaults to a
        window's n_motions; ``check``: a stop-request check run midway)."""
        frame_num = frame_num or self.cfg.n_motions
        hidden = hubert_hidden(self.audio_encoder, audio, frame_num, self.cfg.fps, trace, check)
        feat = self.audio_feature_map(hidden)
        if trace is not None:
            trace["audio_feat"] = feat
        return feat

    def guided_prediction(self, x_t: torch.Tensor, audio_feat: torch.Tensor,
                          prev_motion: torch.Tensor, prev_audio: torch.Tensor, t: int,
                          cfg_scale: float, pe_mode: str = "prefix",
                          trace: Optional[dict] = None) -> torch.Tensor:
        """The network's guided prediction for the last n_motions frames (N, L, D).

        One batch [null audio, audio] (the reference's order), then
        ``out_null + cfg_scale·(out_audio − out_null)``; with ``cfg_scale`` 1 only the
        audio-conditioned half is run.
        """
        n = x_t.shape[0]
        length = self.cfg.n_motions
        if cfg_scale == 1.0:
            steps = torch.full((n,), int(t), dtype=torch.long, device=x_t.device)
            return self.denoising_net(x_t, audio_feat, prev_motion, prev_audio, steps,
                                      pe_mode)[:, -length:]
        null = self.null_audio_feat.expand(n, audio_feat.shape[1], -1).to(audio_feat.dtype)
        steps = torch.full((2 * n,), int(t), dtype=torch.long, device=x_t.device)
        out = self.denoising_net(torch.cat([x_t, x_t]), torch.cat([null, audio_feat]),
                                 torch.cat([prev_motion, prev_motion]),
                                 torch.cat([prev_audio, prev_audio]), steps, pe_mode)
        out_null, out_audio = out.float().chunk(2)
        if trace is not None:
            trace.update(out_null=out_null, out_audio=out_audio)
        return out_null[:, -length:] + cfg_scale * (out_audio[:, -length:] - out_null[:, -length:])
