"""Ditto end to end with a tiny LMDM: seeded sampling, online/streaming equivalence and
latency, emotion, and a 10 s speech clip through HuBERT (stand-in ONNX) -> keypoints."""
import os
import time
import wave

import numpy as np
import pytest
import torch

from talking_head.pipelines.ditto import (
    ConditionSource, DittoConfig, DittoControls, DittoSampling, MotionDecoder, eye_attributes,
    MotionDriver, MotionStream, hubert_features, generate_motion, stitch_motion, stream_motion)
from talking_head.pipelines.core.errors import TalkingHeadError
from talking_head.pipelines.core.runtime import RunContext
from talking_head.pipelines.ditto.lmdm import TINY
from talking_head.pipelines.liveportrait.drive import motion_keypoints
from talking_head.pipelines.liveportrait.stitching import stitch
from talking_head.pipelines.ditto.audio2motion import WindowFuser, audio2motion_offline, clip_motion
from talking_head.pipelines.ditto.conditions import ConditionHandler
from talking_head.pipelines.ditto.sampler import DDIMSampler, NoiseSource
from talking_head.pipelines.liveportrait.keypoints import bins_to_degrees
from talking_head.pipelines.liveportrait.stitching import STITCH, StitchingMLP
from talking_head.pipelines.core.types import AudioFeatures, ModelBundle, MotionInfo
from tests.paths import FIXTURES, needs_shared
from tests.test_ditto_audio import export_standin


pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_lmdm(seed=0):
    g = torch.Generator().manual_seed(seed)
    m = MotionDecoder(TINY)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 / max(1, p.shape[-1]) ** 0.5
                                                         if p.ndim > 1 else 0.05))
    return m.eval()


def _bundle(cfg=None, hubert=None):
    return ModelBundle("ditto", {"lmdm": _tiny_lmdm(), "cfg": cfg or DittoConfig(),
                                 "hubert": hubert, "stitch": None}, torch.device("cpu"), torch.float32)


def _portrait():
    rng = np.random.default_rng(4)
    centres = np.arange(66) * 3 - 97.5
    logit = lambda d: torch.tensor(-(centres - d) ** 2 * 0.06, dtype=torch.float32)[None]  # noqa
    info = MotionInfo(pitch=logit(3), yaw=logit(-5), roll=logit(1),
                      t=torch.tensor(rng.normal(0, .02, (1, 3)), dtype=torch.float32),
                      exp=torch.tensor(rng.normal(0, .02, (1, 63)), dtype=torch.float32),
                      scale=torch.tensor([[1.5]]),
                      kp=torch.tensor(rng.normal(0, .25, (1, 63)), dtype=torch.float32))
    return info, np.array([[0.3, 0.3]], np.float32), np.zeros((1, 6), np.float32)


def _features(n, seed=1):
    rng = np.random.default_rng(seed)
    return AudioFeatures(torch.from_numpy(rng.standard_normal((n, 1024)).astype(np.float32)),
                         "hubert", 25.0, n / 25)


def test_seeded_sampler_is_repeatable_and_seed_dependent():
    bundle, src = _bundle(), _portrait()
    feats = _features(150)
    a = generate_motion(bundle, feats, src, sampling=DittoSampling(steps=4, seed=11))
    b = generate_motion(bundle, feats, src, sampling=DittoSampling(steps=4, seed=11))
    c = generate_motion(bundle, feats, src, sampling=DittoSampling(steps=4, seed=12))
    assert a.rows.shape == (150, 265) and a.d0 is None
    assert torch.equal(a.rows, b.rows)
    assert (a.rows - c.rows).abs().max() > 1e-3


def test_generate_motion_is_the_documented_pipeline():
    """generate_motion = ConditionHandler + DDIM windows + fuse/smooth + clip, with the cfg's
    clip range, and an emotion change changes the motion."""
    clip = np.stack([-np.full(265, 2.0), np.full(265, 2.0)]).astype(np.float32)
    cfg = DittoConfig(v_min_max_for_clip=clip)
    bundle, (info, eo, eb) = _bundle(cfg), _portrait()
    feats = _features(100)
    got = generate_motion(bundle, feats, (info, eo, eb), sampling=DittoSampling(steps=3, seed=5, emotion="happy"))
    src = ConditionSource.from_motion(info, eo, eb)
    sampler = DDIMSampler(bundle["lmdm"], 3)
    noise = NoiseSource((80, 265), 3, seed=5)
    sample = lambda kp, c: sampler.sample(torch.from_numpy(kp), torch.from_numpy(c), noise)[0].numpy()  # noqa
    res = audio2motion_offline(sample, ConditionHandler(src, 3), feats.features.numpy(),
                               WindowFuser(src.kp_cond, 80, 10, False, 3))
    assert torch.equal(got.rows, torch.from_numpy(clip_motion(res, (clip[0], clip[1]))))
    assert got.rows.abs().max() <= 2.0
    sad = generate_motion(bundle, feats, (info, eo, eb), sampling=DittoSampling(steps=3, seed=5, emotion="sad"))
    assert (sad.rows - got.rows).abs().max() > 1e-4


def test_registered_source_and_reference_identity():
    """A SOURCE value conditions the LMDM through its first template frames; a cfg with a
    reference identity (ch_info) conditions on that instead, as the release does."""
    from talking_head.pipelines.ditto import condition_source
    from talking_head.pipelines.core.types import Source
    info, eo, eb = _portrait()
    n = 3
    motion = MotionInfo(**{k: v.repeat(n, *([1] * (v.ndim - 1))) for k, v in info.as_dict().items()})
    src = Source(frames=torch.zeros(n, 8, 8, 3, dtype=torch.uint8), fps=25.0,
                 crops=torch.zeros(n, 8, 8, 3, dtype=torch.uint8),
                 crop_to_frame=torch.eye(3).repeat(n, 1, 1), landmarks=torch.zeros(n, 203, 2),
                 landmark_scheme="lmk203", face_found=torch.ones(n, dtype=torch.bool), motion=motion,
                 mesh478=torch.rand(n, 478, 3, generator=torch.Generator().manual_seed(1)))
    cs = condition_source(DittoConfig(), src, template_n_frames=2)
    assert cs.eye_open.shape == (2, 2) and np.allclose(cs.sc, info.kp.reshape(-1).numpy())
    ch = {"x_s_info_lst": [{k: v.numpy() * 2 for k, v in info.as_dict().items()}],
          "eye_open_lst": [np.ones((1, 2))], "eye_ball_lst": [np.zeros((1, 6))]}
    cs_ref = condition_source(DittoConfig(ch_info=ch), src)
    assert np.allclose(cs_ref.sc, 2 * info.kp.reshape(-1).numpy())
    bundle = _bundle()
    out = generate_motion(bundle, _features(40), src, sampling=DittoSampling(steps=2))
    assert out.rows.shape == (40, 265)
    with pytest.raises(TalkingHeadError, match="register"):
        condition_source(DittoConfig(), Source(**{**src.__dict__, "motion": None}))
    # a SOURCE registered with the MediaPipe mesh only: eyes computed from it (NaN = no mesh)
    mesh = torch.rand(n, 478, 3, generator=torch.Generator().manual_seed(0))
    mesh[1] = float("nan")
    meshed = Source(**{**src.__dict__, "mesh478": mesh})
    cs = condition_source(DittoConfig(), meshed)
    want_open, _ = eye_attributes(mesh[[0, 2]].numpy())
    assert np.allclose(cs.eye_open[[0, 2]], want_open) and np.allclose(cs.eye_open[1], want_open.mean(0))


def test_online_generate_equals_streaming_in_any_chunking():
    bundle, src = _bundle(), _portrait()
    feats = _features(93)
    sil = np.zeros((70, 1024), np.float32)
    whole = generate_motion(bundle, feats, src, silence=sil, sampling=DittoSampling(online=True, seed=3))
    assert whole.online and whole.rows.shape == (93, 265) and whole.d0.shape == (265,)
    pieces = np.split(feats.features.numpy(), [3, 4, 30, 31, 77])
    parts = list(stream_motion(bundle, pieces, src, features=True, silence=sil, sampling=DittoSampling(seed=3)))
    rows = torch.cat([p.rows for p in parts])
    assert len(rows) >= 93 and torch.equal(rows[:93], whole.rows)
    assert torch.equal(parts[0].d0, whole.d0)
    # online stitching uses the warm-up frame as anchor and works piecewise
    drv = MotionDriver(src[0], bundle["cfg"])
    m = torch.cat([drv.push(p.rows, p.d0).pitch for p in parts])[:93]
    assert torch.allclose(m, stitch_motion(whole, src[0], bundle["cfg"]).pitch)


def test_online_first_frame_needs_no_more_audio_than_the_reference(tmp_path):
    """The reference emits frame 0 after 20 real features (overlap 70) + 2 HuBERT
    look-ahead frames: 14160 samples (885 ms). Feed 640-sample pieces and record when the
    first motion row appears."""
    enc = lambda chunk: np.tile(chunk[:20, None], (1, 1024)).astype(np.float32)  # noqa
    stream = MotionStream(_bundle(hubert=enc), _portrait(), silence=np.zeros((70, 1024), np.float32), sampling=DittoSampling(steps=2, seed=0))
    assert stream.cfg.overlap_v2 == 70 and stream.cfg.sampling_timesteps == 2
    fed, first = 0, None
    x = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    for i in range(0, len(x), 640):
        rows = stream.push_audio(x[i:i + 640])
        fed += len(x[i:i + 640])
        if len(rows) and first is None:
            first = fed
    assert first is not None and first <= 14160 + 640
    assert stream.d0 is not None


def test_stream_accepts_any_rate_in_any_pieces():
    from talking_head.pipelines.core.audio import resample
    enc = lambda chunk: np.tile(chunk[:20, None], (1, 1024)).astype(np.float32) * 10  # noqa
    x = torch.randn(48000 * 2, generator=torch.Generator().manual_seed(2)) * 0.1
    kw = dict(sampling=DittoSampling(steps=2, seed=0), silence=np.zeros((70, 1024), np.float32))
    a = MotionStream(_bundle(hubert=enc), _portrait(), **kw)
    rows_a = [a.push_audio(x[i:i + 1500], 48000) for i in range(0, len(x), 1500)] + [a.finish()]
    b = MotionStream(_bundle(hubert=enc), _portrait(), **kw)
    rows_b = [b.push_audio(resample(x, 48000, 16000).numpy()), b.finish()]
    ra, rb = np.concatenate(rows_a), np.concatenate(rows_b)
    assert ra.shape == rb.shape and len(ra) >= 50
    assert np.abs(ra - rb).max() < 1e-3
    with pytest.raises(TalkingHeadError, match="48000"):
        a.push_audio(x[:100], 16000)


def test_interrupt_and_progress_are_honoured():
    bundle, src = _bundle(), _portrait()
    seen = []
    generate_motion(bundle, _features(150), src, DittoSampling(steps=1),
                    RunContext(progress=lambda d, t: seen.append((d, t))))
    assert seen[-1] == (3, 3)

    class Stop(Exception):
        pass

    def interrupt():
        raise Stop()
    with pytest.raises(Stop):
        generate_motion(bundle, _features(150), src, DittoSampling(steps=1), RunContext(interrupt=interrupt))


def _read_wav(path):
    with wave.open(path, "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return data.reshape(-1, w.getnchannels()).T.astype(np.float32) / 32768, w.getframerate()


@needs_shared
def test_tiny_end_to_end_on_ten_seconds_of_speech(tmp_path):
    audio, sr = _read_wav(os.path.join(FIXTURES, "speech_16k.wav"))
    onnx_path = export_standin(tmp_path / "hubert.onnx")
    t0 = time.perf_counter()
    feats = hubert_features(torch.from_numpy(audio)[None], sr, onnx_path)
    n = int(np.ceil(audio.shape[1] / sr * 25))
    assert feats.features.shape == (n, 1024) and n >= 250
    info, eo, eb = _portrait()
    bundle = _bundle()
    raw = generate_motion(bundle, feats, (info, eo, eb), sampling=DittoSampling(steps=5, seed=0, emotion=3))
    g = torch.Generator().manual_seed(0)
    S = StitchingMLP(STITCH)
    with torch.no_grad():
        for p in S.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.01)
    motion = stitch_motion(raw, info, DittoConfig(delta_eye_arr=np.full((15, 63), 1e-3, np.float32)), DittoControls(fade_in=5, fade_out=5, seed=1))
    kps = motion_keypoints(motion, info)
    kps.x_d = stitch(S, kps.x_s, kps.x_d)
    elapsed = time.perf_counter() - t0
    assert len(motion) == n and kps.x_d.shape == (n, 21, 3) and torch.isfinite(kps.x_d).all()
    # relative motion + fade-in: frame 0 is the portrait itself
    src_pitch = bins_to_degrees(info.pitch).item()
    assert motion.pitch[0].item() == pytest.approx(src_pitch, abs=1e-4)
    assert torch.allclose(motion.exp[0], info.exp[0], atol=1e-6)
    assert motion.pitch.std() > 0.01 and torch.isfinite(raw.rows).all()
    assert elapsed < 60, f"tiny end to end took {elapsed:.1f}s"
