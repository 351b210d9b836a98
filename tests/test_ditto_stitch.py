"""Ditto's motion stitch: the 5 golden motion_stitch.* cases (reference_quirks=True) and the
fixed behaviour of the controls (the default)."""
import json
import os

import numpy as np
import pytest
import torch

from talking_head.pipelines.ditto import (
    DittoConfig, DittoControls, MotionDriver, blink_schedule, fade_controls, stitch_motion)
from talking_head.pipelines.core.errors import TalkingHeadError
from talking_head.pipelines.liveportrait.drive import motion_keypoints
from talking_head.pipelines.liveportrait.stitching import stitch
from talking_head.pipelines.ditto.motion_layout import SLICES, info_to_row
from talking_head.pipelines.ditto.motion_stitch import LIP_DIMS
from talking_head.pipelines.liveportrait.keypoints import bins_to_degrees
from talking_head.pipelines.core.types import MotionInfo
from tests.goldens import golden as golden_set
from tests.paths import FIDELITY, needs_shared

DITTO = os.path.join(FIDELITY, "ditto")
KEYS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")


@pytest.fixture(scope="module")
def golden():
    from safetensors.numpy import load_file
    return load_file(os.path.join(DITTO, "motion_stitch.safetensors"))


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DITTO, "cases.json")) as fh:
        return {c["name"]: c for c in json.load(fh)["cases"]}


@pytest.fixture(scope="module")
def stitch_net(tmp_path_factory):
    """Keyed S written in the official container and loaded by the Ditto loader."""
    from talking_head.pipelines.ditto.loader import load_stitch
    from tests.fakes import write_fake
    path = tmp_path_factory.mktemp("ditto") / "stitch_network.pth"
    write_fake("ditto_manifest_stitch_network.json", str(path), wrap="retarget_shoulder",
               prefix="module.", base_seed=golden_set("ditto").base_seed)
    return load_stitch(path)


def _motion_info(g, prefixes):
    return MotionInfo(**{k: torch.from_numpy(np.concatenate([g[f"{p}.{k}"] for p in prefixes]))
                         for k in KEYS})


def _keyframes(case, g):
    out = {}
    for f, c in case["per_frame_ctrl_info"].items():
        c = dict(c)
        if "delta_exp" in c:
            c["delta_exp"] = g["ctrl.delta_exp_frame5"]
        out[int(f)] = c
    return out


@needs_shared
@pytest.mark.parametrize("name", ["image_code_defaults", "image_shipped_like",
                                  "image_ctrl_deltas_fade_s", "video_source",
                                  "image_absolute_ch_info"])
def test_motion_stitch_golden(name, golden, cases, stitch_net):
    g, case = golden, cases["motion_stitch." + name]
    img, vid = _motion_info(g, ["x_s_info"]), _motion_info(g, [f"video_x_s_info{i}" for i in range(4)])
    ch = {"x_s_info_lst": [{"scale": g["ch_info.x_s_info.scale"]}]}
    kw = {"keyframes": _keyframes(case, g)}
    if name == "image_code_defaults":
        src, cfg = img, DittoConfig()
    elif name == "image_shipped_like":    # fades come from setup_Nd(fade_in=5, fade_out=5)
        src, kw = img, {"blink_idx": g["blink_idx_list"], "fade_in": 5, "fade_out": 5}
        cfg = DittoConfig(delta_eye_arr=g["delta_eye_arr"], ch_info=ch,
                          overall_ctrl_info={"delta_pitch": 2}, fade_type="d0")
    elif name == "image_ctrl_deltas_fade_s":
        src, cfg = img, DittoConfig(fade_type="s", overall_ctrl_info={"delta_pitch": 2})
    elif name == "video_source":
        src, cfg = vid, DittoConfig(delta_eye_arr=g["delta_eye_arr"], fade_type="d0")
    else:
        src, cfg = img, DittoConfig(relative_d=False, ch_info=ch)
    motion = stitch_motion(torch.from_numpy(g["motion_rows"]), src, cfg, DittoControls(reference_quirks=True, **kw))
    pre = motion_keypoints(motion, src)
    post = stitch(stitch_net, pre.x_s, pre.x_d)
    atol = case["tolerance"]["suggested"]["atol_per_output"]
    for out, value in (("x_s", pre.x_s), ("x_d_prestitch", pre.x_d), ("x_d", post)):
        err = float(np.abs(value.numpy() - g[f"{name}.{out}"]).max())
        print(f"GOLDEN motion_stitch.{name} {out} max_err={err:.3g} atol={atol[f'{name}.{out}']}")
        assert err <= atol[f"{name}.{out}"], (out, err)


# ---------------------------------------------------------------------------------------
# fixed behaviour, on a synthetic portrait and motion


def _logits(deg, sharp=0.6):
    centres = np.arange(66) * 3 - 97.5
    return (-(centres - deg) ** 2 * sharp / 9).astype(np.float32)[None]


@pytest.fixture
def portrait():
    rng = np.random.default_rng(7)
    info = {"pitch": _logits(4.0), "yaw": _logits(-10.0), "roll": _logits(2.0),
            "t": rng.normal(0, 0.02, (1, 3)), "exp": rng.normal(0, 0.02, (1, 63)),
            "scale": np.array([[1.5]]), "kp": rng.normal(0, 0.25, (1, 63))}
    return MotionInfo(**{k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in info.items()})


@pytest.fixture
def rows():
    rng = np.random.default_rng(8)
    out = []
    for f in range(12):
        info = {"pitch": _logits(6 * np.sin(f / 3)), "yaw": _logits(8 * np.cos(f / 4)),
                "roll": _logits(f / 4), "t": rng.normal(0, 0.02, (1, 3)),
                "exp": rng.normal(0, 0.03, (1, 63)), "scale": np.array([[1.45]])}
        out.append(info_to_row(info))
    return torch.from_numpy(np.stack(out))


def _deg(x):
    return float(bins_to_degrees(torch.as_tensor(x, dtype=torch.float32)).reshape(-1)[0])


def test_pitch_delta_moves_the_decoded_pitch_by_that_many_degrees(portrait, rows):
    cfg = DittoConfig()
    base = stitch_motion(rows, portrait, cfg)
    for quirks in (False, True):
        moved = stitch_motion(rows, portrait, cfg, DittoControls(overall={"delta_pitch": 7.5}, keyframes={3: {"delta_pitch": -4.0}}, reference_quirks=quirks))
        d = (moved.pitch - base.pitch).numpy()
        assert np.allclose(np.delete(d, 3), 7.5, atol=1e-4) and d[3] == pytest.approx(-4.0, abs=1e-4)
    # frame 0 of relative motion is the portrait's own pose
    assert base.pitch[0].item() == pytest.approx(_deg(portrait.pitch[0]), abs=1e-4)


def test_alpha_scales_the_angle_not_the_logits(portrait, rows):
    cfg = DittoConfig()
    base = stitch_motion(rows, portrait, cfg)
    fixed = stitch_motion(rows, portrait, cfg, DittoControls(overall={"alpha_yaw": 0.5}))
    assert torch.allclose(fixed.yaw, base.yaw * 0.5, atol=1e-4)
    quirk = stitch_motion(rows, portrait, cfg, DittoControls(overall={"alpha_yaw": 0.5}, reference_quirks=True))
    assert (quirk.yaw - base.yaw * 0.5).abs().max() > 0.5       # softmax sharpness changed
    both = stitch_motion(rows, portrait, cfg, DittoControls(overall={"delta_yaw": 2.0, "alpha_yaw": 0.5}))
    assert torch.allclose(both.yaw, (base.yaw + 2.0) * 0.5, atol=1e-4)


@pytest.mark.parametrize("fade_type", ["", None, "s"])
def test_fade_in_starts_at_the_source_motion(portrait, rows, fade_type):
    cfg = DittoConfig(delta_eye_arr=np.full((15, 63), 0.01, np.float32))
    m = stitch_motion(rows, portrait, cfg, DittoControls(fade_in=4, fade_type=fade_type, fade_keys=("exp", "pitch", "yaw", "roll", "t"), blink_idx=np.arange(12) % 15))
    for k in ("pitch", "yaw", "roll"):
        assert getattr(m, k)[0].item() == pytest.approx(_deg(getattr(portrait, k)[0]), abs=1e-4)
    assert torch.allclose(m.exp[0], portrait.exp[0], atol=1e-6)
    assert torch.allclose(m.t[0], portrait.t[0], atol=1e-6)
    assert torch.allclose(m.scale[0], portrait.scale[0])
    plain = stitch_motion(rows, portrait, cfg, DittoControls(blink_idx=np.arange(12) % 15))
    assert torch.allclose(m.exp[6:], plain.exp[6:])               # fade over after 4 frames
    assert not torch.allclose(m.exp[1], plain.exp[1])
    # the reference ignored fade_alpha with fade_type ""
    quirk = stitch_motion(rows, portrait, cfg, DittoControls(fade_in=4, fade_type="", reference_quirks=True, blink_idx=np.arange(12) % 15))
    assert torch.allclose(quirk.exp, plain.exp)


def test_fade_mixes_pose_in_degrees(portrait, rows):
    cfg = DittoConfig(fade_type="s")
    kf = {5: {"fade_alpha": 0.25, "fade_out_keys": ["pitch"]}}
    m = stitch_motion(rows, portrait, cfg, DittoControls(overall={"delta_pitch": 3.0}, keyframes=kf))
    unfaded = stitch_motion(rows, portrait, cfg, DittoControls(overall={"delta_pitch": 3.0}))
    want = 0.25 * unfaded.pitch[5].item() + 0.75 * _deg(portrait.pitch[0])
    assert m.pitch[5].item() == pytest.approx(want, abs=1e-4)
    quirk = stitch_motion(rows, portrait, cfg, DittoControls(overall={"delta_pitch": 3.0}, keyframes=kf, reference_quirks=True))
    assert abs(quirk.pitch[5].item() - want) > 0.1           # degrees mixed with logits


def test_vad_pulls_only_driven_expression(portrait, rows):
    cfg = DittoConfig(delta_eye_arr=np.full((15, 63), 0.01, np.float32))
    blinks = np.full(12, 7)
    base = stitch_motion(rows, portrait, cfg, DittoControls(blink_idx=blinks))
    vad = stitch_motion(rows, portrait, cfg, DittoControls(blink_idx=blinks, overall={"vad_alpha": 0.0}))
    lips = torch.as_tensor(LIP_DIMS)
    assert torch.allclose(vad.exp.reshape(12, 63)[:, lips], portrait.exp.reshape(1, 63)[:, lips]
                          .expand(12, -1), atol=1e-6)
    other = torch.ones(63, dtype=torch.bool)
    other[lips] = False
    # eyes keep the blink template (the reference also pulled them back to the source)
    assert torch.allclose(vad.exp.reshape(12, 63)[:, other], base.exp.reshape(12, 63)[:, other])


def test_video_source_drives_only_the_lips(rows):
    rng = np.random.default_rng(1)
    n = 5
    src = MotionInfo(**{
        "pitch": torch.from_numpy(np.concatenate([_logits(d) for d in (0, 3, 6, 9, 12)])),
        "yaw": torch.from_numpy(np.concatenate([_logits(-d) for d in range(n)])),
        "roll": torch.from_numpy(np.concatenate([_logits(0)] * n)),
        "t": torch.from_numpy(rng.normal(0, .02, (n, 3)).astype(np.float32)),
        "exp": torch.from_numpy(rng.normal(0, .02, (n, 63)).astype(np.float32)),
        "scale": torch.full((n, 1), 1.4), "kp": torch.from_numpy(rng.normal(0, .25, (n, 63)).astype(np.float32))})
    m = stitch_motion(rows, src, DittoConfig(), DittoControls(preserve_motion=True))
    assert m.source_index.tolist() == [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0, 1]
    exp_src = src.exp.reshape(n, 63)[m.source_index]
    exp_gen = rows[:, SLICES["exp"]]
    lips = torch.as_tensor(LIP_DIMS)
    other = torch.ones(63, dtype=torch.bool)
    other[lips] = False
    got = m.exp.reshape(12, 63)
    assert torch.equal(got[:, other], exp_src[:, other])
    assert torch.allclose(got[:, lips], (exp_src + exp_gen - exp_gen[0])[:, lips], atol=1e-6)
    assert torch.allclose(m.pitch, torch.tensor([_deg(src.pitch[i]) for i in m.source_index]), atol=1e-4)
    # template_n_frames: only the first 2 frames are used
    m2 = stitch_motion(rows, src, DittoConfig(), DittoControls(template_n_frames=2))
    assert m2.source_index.tolist() == [0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0]


def test_blink_schedule_is_seeded_and_ends_open():
    a, b = blink_schedule(1000, seed=1), blink_schedule(1000, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, blink_schedule(1000, seed=2))
    starts = np.flatnonzero((a == 1) & (np.roll(a, 1) == 0)) - 1
    gaps = np.diff(starts) - 15
    assert len(starts) >= 8 and gaps.min() >= 60 and gaps.max() <= 100
    assert a[-1] == 0 and blink_schedule(80, open_n=-1).max() == 0
    fixed = blink_schedule(100, open_n=20)
    assert fixed[20:35].tolist() == list(range(15)) and fixed[:20].max() == 0


def test_streamed_driver_equals_whole_clip_and_controls_are_checked(portrait, rows):
    cfg = DittoConfig(delta_eye_arr=np.full((15, 63), 0.01, np.float32))
    whole = stitch_motion(rows, portrait, cfg, DittoControls(fade_in=3, keyframes={7: {"delta_yaw": 3}}, seed=5))
    drv = MotionDriver(portrait, cfg, controls=DittoControls(fade_in=3, keyframes={7: {"delta_yaw": 3}}, seed=5))
    parts = [drv.push(rows[:5]), drv.push(rows[5:])]
    assert torch.allclose(torch.cat([p.yaw for p in parts]), whole.yaw)
    assert torch.allclose(torch.cat([p.exp for p in parts]), whole.exp)
    with pytest.raises(TalkingHeadError, match="unknown motion control"):
        stitch_motion(rows, portrait, cfg, DittoControls(keyframes={2: {"delta_pich": 3}}))
    assert fade_controls(20, 5, 5)[14] == {"fade_alpha": 1.0}
