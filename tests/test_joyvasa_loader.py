"""JoyVASA files and the run around the network: the restricted .pt reader (refused
globals, PosixPath), strict key checks, weight-norm names, the safetensors conversion,
the motion template, and tiny-config end-to-end generation (lengths, seeds, controls)."""
import argparse
import os
import pathlib
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from talking_head.pipelines.core.checkpoint_io import load_state_dict_strict, load_torch_archive
from talking_head.pipelines.core.errors import (
    CheckpointError, MissingWeightsError, ShapeError, TalkingHeadError, UnsafePickleError)
from talking_head.pipelines.core.runtime import RunContext
from talking_head.pipelines.joyvasa import (
    JoyVASASettings, NoiseSource, TINY, convert_to_safetensors, frame_count, generate_motion,
    load_joyvasa, load_motion_generator, load_template, read_checkpoint, resample_frames)
from talking_head.pipelines.joyvasa.controls import (
    EYE_CLOSED, add_blinks, blink_starts, restrict_region, scale_changes, smooth_parts)
from talking_head.pipelines.joyvasa.loader import align_weight_norm, config_from_checkpoint
from talking_head.pipelines.liveportrait.keypoints import EYE_KP, LIP_KP
from tests.fake_joyvasa import (
    template_dict, tiny_checkpoint, write_released_pt, write_template, write_tiny)

pytestmark = pytest.mark.usefixtures("one_thread")
MARKER = "/tmp/talking_head_joyvasa_pwned"


class _Boom:
    def __reduce__(self):
        return (os.system, (f"echo pwned > {MARKER}",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("joyvasa_tiny")
    pt = write_tiny(folder / "motion_generator_hubert_chinese.pt", seed=0)
    tpl = write_template(folder / "motion_template.pkl", seed=0)
    return {"motion_generator": pt, "template": tpl}


@pytest.fixture(scope="module")
def bundle(files):
    return load_joyvasa(files, "cpu")


def _speech(seconds: float, seed: int = 0, rate: int = 16000) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = int(round(seconds * rate))
    t = torch.arange(n) / rate
    return 0.3 * torch.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * torch.sin(2 * np.pi * 3 * t)) \
        + 0.02 * torch.randn(n, generator=g)


# ---------------------------------------------------------------------------------------
# the restricted archive reader


def test_a_pt_with_os_system_is_refused_and_never_run(tmp_path):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    path = tmp_path / "evil.pt"
    torch.save({"args": _Boom(), "model": {"w": torch.ones(2)}}, path)
    with pytest.raises(UnsafePickleError, match=r"(posix|os|nt)\.system"):
        read_checkpoint(path)
    assert not os.path.exists(MARKER)


@pytest.mark.parametrize("value, name", [(getattr, r"(__builtin__|builtins)\.getattr"),
                                         (__import__("collections").Counter("ab"), r"collections\.Counter"),
                                         (__import__("datetime").date(2020, 1, 1), r"datetime\.date")])
def test_other_globals_are_refused_by_name(tmp_path, value, name):
    path = tmp_path / "odd.pt"
    torch.save({"args": argparse.Namespace(x=value), "model": {"w": torch.ones(2)}}, path)
    with pytest.raises(UnsafePickleError, match=name):
        read_checkpoint(path)


def test_archive_reader_rebuilds_tensors_like_torch_load(tmp_path):
    sd = OrderedDict(a=torch.randn(3, 4), b=torch.rand(5) > 0.5, c=torch.randn(6).half(),
                     d=torch.arange(7), e=torch.randn(2, 3, dtype=torch.float64))
    sd["view"] = sd["a"][:, 1]                  # a strided view of a shared storage
    sd["t"] = sd["a"].t()
    path = tmp_path / "m.pt"
    torch.save({"model": sd}, path)
    ours = load_torch_archive(path)["model"]
    ref = torch.load(path, weights_only=True)["model"]
    assert list(ours) == list(ref)
    for k in ref:
        assert ours[k].dtype == ref[k].dtype and torch.equal(ours[k], ref[k]), k
    assert isinstance(ours, OrderedDict)


def test_namespace_and_posix_path_load_as_pure_paths(files, monkeypatch):
    # as on Windows: instantiating a concrete PosixPath is impossible there
    def no_posix(cls, *a, **k):
        raise NotImplementedError("cannot instantiate 'PosixPath' on your system")

    monkeypatch.setattr(pathlib.PosixPath, "__new__", no_posix)
    obj = load_torch_archive(files["motion_generator"], {
        ("argparse", "Namespace"): argparse.Namespace,
        ("pathlib", "PosixPath"): pathlib.PurePosixPath})
    assert type(obj["args"].data_root) is pathlib.PurePosixPath
    assert obj["args"].data_root == pathlib.PurePosixPath("data")
    args, sd = read_checkpoint(files["motion_generator"])
    assert args["data_root"] == "data" and args["feature_dim"] == TINY.feature_dim
    assert "denoising_net.feature_proj.weight" in sd


def test_missing_file_says_where_to_download(tmp_path):
    with pytest.raises(MissingWeightsError, match="jdh-algo/JoyVASA"):
        load_motion_generator(tmp_path / "nope.pt")


# ---------------------------------------------------------------------------------------
# strict keys


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path):
    args, sd = tiny_checkpoint(0)
    sd.pop("denoising_net.motion_dec.2.bias")
    sd.pop("audio_encoder.encoder.layers.1.final_layer_norm.weight")
    sd["denoising_net.extra.weight"] = torch.zeros(3)
    sd["null_audio_feat"] = torch.zeros(1, 1, TINY.feature_dim + 1)
    path = write_released_pt(tmp_path / "bad.pt", sd, args)
    with pytest.raises(CheckpointError) as info:
        load_motion_generator(path)
    msg = str(info.value)
    for key in ("denoising_net.motion_dec.2.bias", "audio_encoder.encoder.layers.1.final_layer_norm.weight",
                "denoising_net.extra.weight", "null_audio_feat"):
        assert key in msg, key
    assert "missing" in msg and "unexpected" in msg and "shape" in msg


def test_a_missing_layer_is_not_silently_random(tmp_path):
    args, sd = tiny_checkpoint(0)
    for k in [k for k in sd if k.startswith("denoising_net.transformer.layers.1.")]:
        sd[k.replace("layers.1.", "layers.2.")] = sd.pop(k)   # layer 1 absent, layer 2 extra
    with pytest.raises(CheckpointError, match="layers.1"):
        load_motion_generator(write_released_pt(tmp_path / "gap.pt", sd, args))


def test_step_table_may_be_absent_and_is_always_rebuilt(tmp_path, bundle):
    args, sd = tiny_checkpoint(0)
    sd.pop("denoising_net.TE.pe")
    model = load_motion_generator(write_released_pt(tmp_path / "no_te.pt", sd, args))
    ref = bundle["generator"]
    assert torch.equal(model.denoising_net.TE.pe, ref.denoising_net.TE.pe)
    args, sd = tiny_checkpoint(0)
    sd["denoising_net.TE.pe"] = torch.full_like(sd["denoising_net.TE.pe"], 7.0)
    model = load_motion_generator(write_released_pt(tmp_path / "odd_te.pt", sd, args))
    assert torch.equal(model.denoising_net.TE.pe, ref.denoising_net.TE.pe)


def test_layer_count_comes_from_the_weights_not_the_stale_argument(bundle):
    args, sd = tiny_checkpoint(0)
    assert args["n_layers"] != TINY.n_layers and args["use_indicator"]
    cfg = config_from_checkpoint(args, sd)
    assert cfg.n_layers == TINY.n_layers and cfg.use_indicator is False
    assert cfg.feature_dim == TINY.feature_dim and cfg.n_prev_motions == TINY.n_prev_motions
    with pytest.raises(CheckpointError, match="wav2vec2"):
        config_from_checkpoint({**args, "audio_model": "wav2vec2"}, sd)


@pytest.mark.filterwarnings("ignore:.*weight_norm")
def test_weight_norm_names_map_both_ways(tmp_path, bundle):
    # checkpoint with the old hook names -> the parametrised module
    args, sd = tiny_checkpoint(0)
    stem = "audio_encoder.encoder.pos_conv_embed.conv."
    sd[stem + "weight_g"] = sd.pop(stem + "parametrizations.weight.original0")
    sd[stem + "weight_v"] = sd.pop(stem + "parametrizations.weight.original1")
    model = load_motion_generator(write_released_pt(tmp_path / "wn.pt", sd, args))
    ref = bundle["generator"].state_dict()
    own = model.state_dict()
    for k in ref:
        assert torch.equal(own[k], ref[k]), k
    # checkpoint with parametrisation names -> a module built with the old hooks
    conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(4, 4, 3, groups=2), name="weight", dim=2)
    new = {"conv.bias": torch.randn(4), "conv.parametrizations.weight.original0": torch.rand(1, 1, 3),
           "conv.parametrizations.weight.original1": torch.randn(4, 2, 3)}
    holder = torch.nn.Module()
    holder.conv = conv
    mapped = align_weight_norm(new, holder.state_dict())
    assert set(mapped) == {"conv.bias", "conv.weight_g", "conv.weight_v"}
    load_state_dict_strict(holder, mapped, "test")
    assert torch.equal(holder.conv.weight_g, new["conv.parametrizations.weight.original0"])


# ---------------------------------------------------------------------------------------
# conversion


def test_conversion_round_trip_and_the_pair_is_preferred(tmp_path, bundle):
    pt = write_tiny(tmp_path / "motion_generator_hubert_chinese.pt", seed=0)
    st, js = convert_to_safetensors(pt)
    assert os.path.dirname(st) == os.path.dirname(pt) and os.path.isfile(js)
    args_pt, sd_pt = read_checkpoint(pt)
    with open(pt, "wb") as fh:        # the .pt is now unreadable: the pair must be used
        fh.write(b"not a checkpoint")
    args_st, sd_st = read_checkpoint(pt)
    assert args_st == args_pt
    assert set(sd_st) == set(sd_pt)
    for k in sd_pt:
        assert torch.equal(sd_st[k], sd_pt[k]), k
    model = load_motion_generator(pt)
    ref = bundle["generator"].state_dict()
    assert all(torch.equal(model.state_dict()[k], ref[k]) for k in ref)
    # converting elsewhere: the .safetensors loads by itself too
    out = tmp_path / "converted"
    os.remove(st)
    os.remove(js)
    pt2 = write_tiny(tmp_path / "again.pt", seed=0)
    st2, _ = convert_to_safetensors(pt2, out)
    model2 = load_motion_generator(st2)
    assert all(torch.equal(model2.state_dict()[k], ref[k]) for k in ref)


# ---------------------------------------------------------------------------------------
# template


def test_template_is_read_safely_and_checked(tmp_path):
    tpl = load_template(write_template(tmp_path / "t.pkl", seed=3))
    assert tpl.stats["mean_exp"].shape == (63,)
    bad = template_dict(0)
    del bad["max_yaw"]
    with pytest.raises(CheckpointError, match="max_yaw"):
        load_template(write_template(tmp_path / "bad.pkl", data=bad))
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"mean_exp": _Boom()}))
    with pytest.raises(UnsafePickleError):
        load_template(path)
    assert not os.path.exists(MARKER)


# ---------------------------------------------------------------------------------------
# tiny end to end


@pytest.mark.parametrize("fps, frames", [(25, 25), (30000 / 1001, 30)])
def test_one_second_gives_ceil_seconds_times_fps_frames(bundle, fps, frames):
    motion = generate_motion(bundle, _speech(1.0), 16000, JoyVASASettings(seed=1, fps=fps))
    assert len(motion) == frames == frame_count(16000, 16000, fps)
    assert motion.exp.shape == (frames, 21, 3) and motion.scale.shape == (frames, 1)
    assert motion.t.shape == (frames, 3) and motion.pitch.shape == (frames,)
    assert motion.rotation().shape == (frames, 3, 3)
    assert all(torch.isfinite(v).all() for v in motion.fields().values())
    assert float(motion.exp.std(0).max()) > 0      # it moves


def test_other_rates_and_layouts_of_audio(bundle):
    stereo44 = torch.stack([_speech(1.0, rate=44100), _speech(1.0, rate=44100)])[None]
    motion = generate_motion(bundle, stereo44, 44100, JoyVASASettings(fps=24))
    assert len(motion) == 24


def test_same_seed_same_motion_other_seed_other_motion(bundle):
    wav = _speech(1.0)
    a = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=5, smoothing=0.0))
    b = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=5, smoothing=0.0))
    c = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=6, smoothing=0.0))
    assert all(torch.equal(a.fields()[k], b.fields()[k]) for k in a.fields())
    assert not torch.allclose(a.exp, c.exp)


def test_injected_noise_equals_the_seeded_draws(bundle):
    """A NoiseSource with a seed and one fed the same draws give the same motion."""
    wav = _speech(1.0)
    seeded = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=9))
    g = torch.Generator().manual_seed(9)
    cfg = bundle["generator"].cfg
    shape = (1, cfg.n_motions, cfg.motion_feat_dim)
    x_T = torch.randn(shape, generator=g)
    z = torch.stack([torch.randn(shape, generator=g) for _ in range(4 * (cfg.n_diff_steps - 1))])
    injected = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=9),
                               noise=NoiseSource(None, x_T=x_T, z=z))
    assert torch.equal(seeded.exp, injected.exp)


def test_stop_request_is_honoured_and_progress_reported(bundle):
    seen = []

    class Stop(Exception):
        pass

    calls = {"n": 0}

    def interrupt():
        calls["n"] += 1
        if calls["n"] > 5:
            raise Stop()

    ctx = RunContext(progress=lambda d, t: seen.append((d, t)), interrupt=interrupt)
    with pytest.raises(Stop):
        generate_motion(bundle, _speech(1.0), 16000, JoyVASASettings(), ctx)
    assert 0 < len(seen) <= 5
    done = []
    ctx = RunContext(progress=lambda d, t: done.append((d, t)), interrupt=None)
    generate_motion(bundle, _speech(1.0), 16000, JoyVASASettings(), ctx)
    assert done[-1][0] == done[-1][1] and [d for d, _ in done] == sorted(d for d, _ in done)


# ---------------------------------------------------------------------------------------
# controls


def _parts(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"exp": torch.randn(n, 21, 3, generator=g) * 0.01, "scale": 1 + 0.1 * torch.rand(n, 1, generator=g),
            "t": torch.randn(n, 3, generator=g) * 0.01, "pitch": torch.randn(n, 1, generator=g) * 5,
            "yaw": torch.randn(n, 1, generator=g) * 5, "roll": torch.randn(n, 1, generator=g) * 5}


@pytest.mark.parametrize("region", ["all", "expression", "pose", "lips", "eyes"])
def test_region_holds_the_rest_at_the_first_frame(region):
    parts = _parts()
    out = restrict_region(parts, region)
    pose_moves = region in ("all", "pose")
    for k in ("scale", "t", "pitch", "yaw", "roll"):
        assert torch.equal(out[k], parts[k]) if pose_moves else torch.equal(out[k], parts[k][:1].expand_as(parts[k]))
    rows = {"all": range(21), "expression": range(21), "pose": (), "lips": LIP_KP, "eyes": EYE_KP}[region]
    for r in range(21):
        if r in rows:
            assert torch.equal(out["exp"][:, r], parts["exp"][:, r])
        else:
            assert torch.equal(out["exp"][:, r], parts["exp"][:1, r].expand(60, 3))


def test_multiplier_scales_changes_from_the_first_frame():
    parts = _parts()
    out = scale_changes(parts, 0.5)
    for k, v in parts.items():
        assert torch.equal(out[k][0], v[0])
        assert torch.allclose(out[k] - v[:1], 0.5 * (v - v[:1]), atol=1e-6)


def test_smoothing_strength_and_zero_phase_expression():
    parts = _parts(200)
    ref = smooth_parts(parts, 0.99)
    assert torch.equal(ref["exp"], parts["exp"])                       # reference: exp untouched
    assert float(ref["yaw"].diff(dim=0).abs().mean()) < 0.05 * float(parts["yaw"].diff(dim=0).abs().mean())
    off = smooth_parts(parts, 0.0)
    assert all(torch.equal(off[k], parts[k]) for k in parts)
    # zero phase: a step is smoothed symmetrically (no delay) around its edge
    step = {**parts, "exp": torch.cat([torch.zeros(100, 21, 3), torch.ones(100, 21, 3)])}
    sm = smooth_parts(step, 0.0, 0.6)["exp"][:, 0, 0]
    assert float(sm.diff().abs().max()) < 1.0
    assert abs(float(sm[99] + sm[100]) - 1.0) < 1e-3


def test_blinks_are_seeded_on_the_eye_rows_and_finish_inside_the_clip():
    exp = torch.zeros(25 * 20, 21, 3)
    a = add_blinks(exp, 25.0, seed=1)
    b = add_blinks(exp, 25.0, seed=1)
    c = add_blinks(exp, 25.0, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    moved = (a != 0).any(dim=(0, 2)).nonzero().reshape(-1).tolist()
    assert set(moved) == {k for k, _, _ in EYE_CLOSED} and set(moved) <= set(EYE_KP)
    assert torch.equal(a[0], exp[0]) and torch.equal(a[-1], exp[-1])
    starts = blink_starts(20.0, seed=1)
    assert 3 <= len(starts) <= 10 and starts[0] >= 2.0
    assert all(b - a >= 2.0 for a, b in zip(starts, starts[1:]))
    peak = a[:, 11, 1].max()
    assert abs(float(peak) - 0.02) < 2.5e-3              # reaches (almost) a full close


def test_blinks_in_generated_motion(bundle):
    wav = _speech(3.0)
    plain = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=3, blink_gap_s=(0.5, 1.0)))
    blink = generate_motion(bundle, wav, 16000, JoyVASASettings(seed=3, blinks=True, blink_gap_s=(0.5, 1.0)))
    diff = (blink.exp - plain.exp).abs().amax(dim=(0, 2))
    assert float(diff[11]) > 0.01 and float(diff[[r for r in range(21) if r not in EYE_KP]].max()) == 0


def test_settings_are_checked():
    with pytest.raises(ShapeError, match="region"):
        JoyVASASettings(region="mouth")
    with pytest.raises(ShapeError, match="positional"):
        JoyVASASettings(pe_mode="learned")
    with pytest.raises(ShapeError, match="smoothing"):
        JoyVASASettings(smoothing=1.0)
    with pytest.raises(TalkingHeadError, match="fps"):
        JoyVASASettings(fps=0)
    assert JoyVASASettings(region="lip").region == "lips"


# ---------------------------------------------------------------------------------------
# frame rate arithmetic


def test_frame_count_and_resampling_do_not_drift():
    assert frame_count(16000 * 600, 16000, 30000 / 1001) == 17983       # 599.4... -> ceil
    assert frame_count(16000, 16000, 25) == 25 and frame_count(16001, 16000, 25) == 26
    x = torch.arange(1000, dtype=torch.float32)[:, None] * torch.ones(1, 3)
    same = resample_frames(x, 25, 800, 25)
    assert torch.equal(same, x[:800])
    out = resample_frames(x, 25, 1198, 30000 / 1001)
    i = torch.arange(1198, dtype=torch.float64)
    expect = i * 25 * 1001 / 30000
    assert float((out[:, 0].double() - expect).abs().max()) < 1e-3
    assert float(out[-1, 0]) < 999     # the last frame is still inside the clip
