"""Ditto's audio -> motion entry points over a loaded bundle (see loader.load_ditto).

* :func:`generate_motion`: features of a whole clip -> :class:`~.driving.DittoMotion`
  (offline, or the streaming algorithm run over the whole clip);
* :func:`source_motion`: the same, then the motion stitch for a SOURCE -> MOTION;
* :class:`MotionStream` / :func:`stream_motion`: live audio (or features) in, motion
  rows out as soon as they are final.

Settings left at None come from the bundle's cfg (the released file), and a value
the caller passes always wins. Asking for online mode with an offline cfg switches to
the shipped online settings (overlap 70, 10 steps, kp_cond reset every window) unless
given explicitly; the offline overlap would otherwise delay the first frame by ~3 s.
Precision: the LMDM keeps fp32 weights and runs under ``ctx.autocast()`` (fp16/bf16 on a
GPU), as core/runtime.py describes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from ..core.audio import StreamResampler, to_mono
from ..core.errors import TalkingHeadError
from ..core.motion import Motion
from ..core.runtime import CPU, RunContext
from ..core.types import AudioFeatures, ModelBundle, Source
from .audio2motion import OnlineAudio2Motion, WindowFuser, audio2motion_offline, clip_motion
from .conditions import ConditionHandler, ConditionSource
from .config import DittoConfig
from .driving import DittoControls, DittoMotion, stitch_motion
from .eye import eye_attributes
from .frames import template_frames
from .hubert import FEAT_DIM, FPS, SAMPLE_RATE, HubertStream, as_encoder, silence_features
from .sampler import DDIMSampler, NoiseSource


@dataclass(frozen=True)
class DittoSampling:
    """How the LMDM samples; None = the released cfg's value.

    steps: DDIM steps. overlap: window overlap (frames). smoothing: pose smoothing kernel.
    emotion: 0-7 / name / mixture / (m,8) table / per-frame list (conditions.parse_emotion).
    seed: the sampler's noise (same seed, same motion). online: the streaming algorithm.
    use_reference_identity: condition on the cfg's reference face (the release's
    behaviour) instead of the portrait. template_n_frames: a video source conditions on
    its first N frames. guidance: classifier-free guidance scale.
    """

    steps: Optional[int] = None
    overlap: Optional[int] = None
    smoothing: Optional[int] = None
    emotion: object = None
    seed: int = 0
    online: Optional[bool] = None
    use_reference_identity: bool = True
    template_n_frames: Optional[int] = None
    guidance: float = 2.0

    def replace(self, **changes) -> "DittoSampling":
        return dataclasses.replace(self, **changes)


ONLINE_DEFAULTS = dict(overlap_v2=70, sampling_timesteps=10, fix_kp_cond=1, fix_kp_cond_dim=(0, 202))


def condition_source(bundle_or_cfg, source=None, use_reference_identity: bool = True,
                     template_n_frames: Optional[int] = None) -> ConditionSource:
    """Who the LMDM is conditioned on: the cfg's reference identity (the release's
    behaviour) or the portrait: a ConditionSource, a Source (motion + eye attributes),
    or a tuple (MotionInfo, eye_open, eye_ball)."""
    cfg = bundle_or_cfg["cfg"] if isinstance(bundle_or_cfg, ModelBundle) else bundle_or_cfg
    if use_reference_identity and cfg.ch_info is not None:
        return ConditionSource.from_ch_info(cfg.ch_info)
    if isinstance(source, ConditionSource):
        return source
    if isinstance(source, Source):
        if source.motion is None:
            raise TalkingHeadError("the SOURCE has no motion info yet: register it with the "
                                   "LivePortrait/Ditto renderer models connected to Face Register")
        motion = source.motion
        eo, eb = _eyes_from_mesh(source.mesh478)
    elif isinstance(source, (tuple, list)) and len(source) == 3:
        motion, eo, eb = source
    else:
        raise TalkingHeadError("Ditto's condition source must be a ConditionSource, a "
                               "registered SOURCE, or (MotionInfo, eye_open, eye_ball)")
    n = template_frames(len(motion), cfg.template_n_frames if template_n_frames is None
                        else template_n_frames)
    return ConditionSource.from_motion(motion, eo, eb, n)


def _eyes_from_mesh(mesh):
    """Eye attributes from the SOURCE's MediaPipe mesh; frames without a mesh (NaN) take
    the mean of the others."""
    if mesh is None:
        raise TalkingHeadError("the SOURCE has no MediaPipe face mesh, which Ditto's eye condition "
                               "needs: register it with the mediapipe detector, or keep "
                               "use_reference_identity on (the released cfg's reference face)")
    eo, eb = eye_attributes(mesh.detach().cpu().numpy() if hasattr(mesh, "detach") else mesh)
    ok = np.isfinite(eo).all(1) & np.isfinite(eb).all(1)
    if not ok.any():
        raise TalkingHeadError("no frame of the SOURCE has a usable face mesh for Ditto's eye "
                               "condition; keep use_reference_identity on")
    eo[~ok], eb[~ok] = eo[ok].mean(0), eb[ok].mean(0)
    return eo, eb


class _Setup:
    """Resolved settings + the objects one generation run needs."""

    def __init__(self, bundle: ModelBundle, source, sampling: DittoSampling, ctx: RunContext,
                 noise: Optional[NoiseSource] = None, online: Optional[bool] = None):
        cfg: DittoConfig = bundle["cfg"]
        online = sampling.online if online is None else online
        self.online = cfg.online_mode if online is None else bool(online)
        if self.online and not cfg.online_mode:
            cfg = cfg.resolve(**ONLINE_DEFAULTS)
        cfg = cfg.resolve(sampling_timesteps=sampling.steps, overlap_v2=sampling.overlap,
                          smo_k_d=sampling.smoothing, emo=sampling.emotion)
        self.cfg, self.ctx = cfg, ctx
        model = bundle["lmdm"]
        self.seq = model.cfg.seq_len
        self.cond_src = condition_source(cfg, source, sampling.use_reference_identity,
                                         sampling.template_n_frames)
        self.handler = ConditionHandler(self.cond_src, cfg.emo, cfg.eye_f0_mode, cfg.use_emo,
                                        cfg.use_eye_open, cfg.use_eye_ball, cfg.use_sc)
        self.sampler = DDIMSampler(model, cfg.sampling_timesteps, sampling.guidance)
        self.noise = noise or NoiseSource((self.seq, model.cfg.nfeats), cfg.sampling_timesteps,
                                          sampling.seed)
        self.fuser = WindowFuser(self.cond_src.kp_cond, self.seq, cfg.overlap_v2, self.online,
                                 cfg.smo_k_d, cfg.fix_kp_cond, cfg.fix_kp_cond_dim)

    def sample(self, kp_cond: np.ndarray, cond: np.ndarray) -> np.ndarray:
        with self.ctx.autocast():
            x = self.sampler.sample(torch.from_numpy(kp_cond), torch.from_numpy(cond), self.noise,
                                    check=self.ctx.check)
        return x[0].float().cpu().numpy()


def _silence(bundle: ModelBundle, n: int) -> np.ndarray:
    """HuBERT of ``n`` silent frames (cached per bundle); zeros without a HuBERT model."""
    cache = bundle.extra.setdefault("silence_feats", {})
    if n not in cache:
        hub = bundle.nets.get("hubert")
        cache[n] = silence_features(n, hub) if hub is not None else np.zeros((n, FEAT_DIM), np.float32)
    return cache[n]


def generate_motion(bundle: ModelBundle, features: AudioFeatures, source=None,
                    sampling: DittoSampling = DittoSampling(), ctx: RunContext = CPU,
                    noise: Optional[NoiseSource] = None,
                    silence: Optional[np.ndarray] = None) -> DittoMotion:
    """HuBERT features (T,1024) at 25 fps -> clipped LMDM motion (T,265) + anchor.

    ``noise`` injects a NoiseSource instead of the seeded one, ``silence`` the online
    warm-up features (tests); ``ctx`` is checked between diffusion steps.
    """
    if features.kind != "hubert":
        raise TalkingHeadError(f"Ditto needs HuBERT features (Audio to HuBERT Features), got "
                               f"'{features.kind}' features")
    feats = features.features.detach().cpu().float().numpy()
    if len(feats) == 0:
        raise TalkingHeadError("the audio features are empty (no audio frames); connect audio "
                               "with speech in it")
    st = _Setup(bundle, source, sampling, ctx, noise)
    clip = st.cfg.clip_min_max
    if not st.online:
        res = audio2motion_offline(st.sample, st.handler, feats, st.fuser, progress=ctx.report)
        return DittoMotion(torch.from_numpy(clip_motion(res, clip)), float(features.fps))
    sil = silence if silence is not None else _silence(bundle, st.cfg.overlap_v2)
    stream = OnlineAudio2Motion(st.sample, st.handler, st.fuser, sil, clip)
    out, total, step = [], len(feats), 5
    for i in range(0, total, step):     # the reference feeds one HuBERT chunk (5 frames) at a time
        out.append(stream.push(feats[i:i + step]))
        ctx.report(min(i + step, total), total)
    out.append(stream.finish())
    rows = np.concatenate(out)[:total]  # the reference's 5-10 trailing extra frames are dropped
    return DittoMotion(torch.from_numpy(rows), float(features.fps),
                       d0=torch.from_numpy(stream.d0), online=True)


def source_motion(bundle: ModelBundle, features: AudioFeatures, source: Source,
                  sampling: DittoSampling = DittoSampling(),
                  controls: DittoControls = DittoControls(), ctx: RunContext = CPU) -> Motion:
    """Audio features -> the final MOTION for ``source``: :func:`generate_motion`, then the
    motion stitch with ``controls`` (their ``overall`` defaults to the cfg's). The result
    carries Ditto's restitch hook, so Motion Controls re-stitches without sampling again."""
    if source.motion is None:
        raise TalkingHeadError("The SOURCE has no motion-extractor data: connect the renderer models "
                               "(Load Ditto Models' renderer output) to Face Register.")
    cfg = bundle["cfg"]
    raw = generate_motion(bundle, features, source, sampling, ctx)
    controls = controls.replace(
        template_n_frames=sampling.template_n_frames if controls.template_n_frames is None
        else controls.template_n_frames,
        seed=sampling.seed, use_reference_identity=sampling.use_reference_identity,
        overall=dict(cfg.overall_ctrl_info) if controls.overall is None else controls.overall)
    return stitch_motion(raw, source.motion, cfg, controls)


class MotionStream:
    """Live audio -> motion rows. ``push_audio(samples, sample_rate)`` / ``push_features``
    return the (k,265) rows that became final; ``finish()`` flushes; ``d0`` is the anchor
    for :func:`~.driving.stitch_motion` (set after the first window)."""

    def __init__(self, bundle: ModelBundle, source=None, sampling: DittoSampling = DittoSampling(),
                 ctx: RunContext = CPU, noise: Optional[NoiseSource] = None,
                 silence: Optional[np.ndarray] = None):
        st = _Setup(bundle, source, sampling, ctx, noise, online=True)
        self.cfg = st.cfg
        hub = bundle.nets.get("hubert")
        self.hubert = HubertStream(as_encoder(hub)) if hub is not None else None
        self.resampler, self.rate = None, None
        sil = silence if silence is not None else _silence(bundle, st.cfg.overlap_v2)
        self.a2m = OnlineAudio2Motion(st.sample, st.handler, st.fuser, sil, st.cfg.clip_min_max)

    @property
    def d0(self) -> Optional[torch.Tensor]:
        return None if self.a2m.d0 is None else torch.from_numpy(self.a2m.d0)

    def push_features(self, feats) -> np.ndarray:
        return self.a2m.push(np.asarray(feats, np.float32))

    def push_audio(self, samples, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Mono or (C,T) samples at ``sample_rate`` (resampled without seams between pieces)."""
        if self.hubert is None:
            raise TalkingHeadError("this Ditto bundle has no HuBERT model; push features instead")
        if self.resampler is None:
            self.resampler = StreamResampler(sample_rate, SAMPLE_RATE)
            self.rate = int(sample_rate)
        elif int(sample_rate) != self.rate:
            raise TalkingHeadError(f"the stream started at {self.rate} Hz; got {sample_rate} Hz")
        audio = self.resampler.push(to_mono(samples)).numpy()
        return self.push_features(self.hubert.push(audio))

    def finish(self) -> np.ndarray:
        rows = []
        if self.hubert is not None:
            if self.resampler is not None:
                rows.append(self.a2m.push(self.hubert.push(self.resampler.finish().numpy())))
            rows.append(self.a2m.push(self.hubert.finish()))
        rows.append(self.a2m.finish())
        return np.concatenate(rows)


def stream_motion(bundle: ModelBundle, chunks: Iterable, source=None, features: bool = False,
                  sample_rate: int = SAMPLE_RATE, sampling: DittoSampling = DittoSampling(),
                  ctx: RunContext = CPU, silence: Optional[np.ndarray] = None) -> Iterator[DittoMotion]:
    """Yield :class:`DittoMotion` pieces (new rows + the anchor ``d0``) as audio chunks
    (or, with ``features=True``, HuBERT feature chunks) arrive; the last is the flush.
    Feed them to one :class:`~.driving.MotionDriver` to get Motion incrementally."""
    stream = MotionStream(bundle, source, sampling, ctx, silence=silence)
    for chunk in chunks:
        rows = stream.push_features(chunk) if features else stream.push_audio(chunk, sample_rate)
        if len(rows):
            yield DittoMotion(torch.from_numpy(rows), float(FPS), stream.d0, online=True)
    rows = stream.finish()
    if len(rows):
        yield DittoMotion(torch.from_numpy(rows), float(FPS), stream.d0, online=True)
