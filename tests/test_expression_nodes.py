"""The expression nodes on fake tiny models: the sliders reach the right maths through the
node, an edit of a still renders what it says (and an all-zero edit is the source),
offsets on a driving video's, JoyVASA's and Ditto's MOTION change exactly what they
should, presets round-trip and refuse bad files and names, scripts fail by line, and
CHANGE = 0 is a jump. The slider coefficients themselves are pinned in
test_expression_edit.py; here only the wiring is."""
import json
import math
import os

import cv2
import numpy as np
import pytest
import torch

from talking_head.nodes import expression_nodes as X
from talking_head.nodes import host
from talking_head.nodes.convert import image_to_tensor, numpy_to_audio
from talking_head.nodes.ditto_nodes import AudioToHubert, DittoMotion, LoadDittoModels
from talking_head.nodes.face_nodes import FaceRegister
from talking_head.nodes.liveportrait_nodes import Decode, ExtractMotion, Stitch, Warp
from talking_head.pipelines.core import images, media
from talking_head.pipelines.core.errors import ShapeError
from talking_head.pipelines.core.motion import DrivingSpec
from talking_head.pipelines.expression import (
    SLIDER_RANGES, ExpressionError, ExpressionSet, Mix, PresetError, ScriptError, Sliders,
    build_expression, edit)
from talking_head.pipelines.expression.motion_bridge import source_params
from talking_head.pipelines.expression.sliders import EFFECTS
from tests import fake_models
from tests.paths import FIXTURES, needs_shared

pytestmark = needs_shared
SMILE_KP = sorted({k for k, _, _ in EFFECTS["smile"]})          # 3, 7, 13, 14, 16, 17, 20


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Fake tiny Ditto + renderer + MediaPipe, the photo registered once, a driving clip."""
    root = tmp_path_factory.mktemp("expression_nodes")
    fake_models.write_all(str(root / "models"), families=("aux", "ditto"))
    mp = pytest.MonkeyPatch()
    fake_models.use(mp, str(root / "models"))
    mp.setenv("TALKING_HEAD_OUTPUT", str(root / "output"))
    ditto, lp = LoadDittoModels().load()
    photo = media.read_image(os.path.join(FIXTURES, "astronaut.png"))
    source, _ = FaceRegister().register(image_to_tensor(images.to_float(photo)), 25.0, models=lp)
    yield {"root": root, "ditto": ditto, "lp": lp, "source": source, "photo": photo}
    mp.undo()


def _edit(env, **kwargs):
    out = X.ExpressionEdit().edit(env["source"], env["lp"], **kwargs)
    return out["result"]


def _keypoints(env, motion, stitching=False):
    return Stitch().stitch(env["source"], motion, env["lp"], stitching=stitching)[0]


def _driving_frames(n=8, size=256):
    """The photo moved and turned a little per frame (a driving clip, in memory)."""
    img = cv2.resize(media.read_image(os.path.join(FIXTURES, "astronaut.png")), (size, size),
                     interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((size / 2, size / 2), 6 * math.sin(i / 2), 1.0 + 0.02 * i)
        m[:, 2] += (3 * math.sin(i / 3), 2 * math.cos(i / 2))
        frames.append(cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT101))
    return image_to_tensor(images.to_float(np.stack(frames)))


@pytest.fixture(scope="module")
def video_motion(env):
    return ExtractMotion().extract(env["source"], _driving_frames(), env["lp"], fps=25.0)[0]


@pytest.fixture(scope="module")
def ditto_motion(env):
    speech = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))[:6400]   # 0.4 s
    features = AudioToHubert().encode(numpy_to_audio(speech, 16000), env["ditto"])[0]
    return DittoMotion().generate(features, env["source"], env["ditto"], seed=3)[0]


# ---------------------------------------------------------------------------------------
# editing the still


@pytest.mark.parametrize("name", sorted(SLIDER_RANGES))
def test_every_slider_reaches_its_own_maths(env, name):
    """Each widget feeds the slider of its name (a swapped pair would fail here)."""
    lo, hi, _, _ = SLIDER_RANGES[name]
    value = hi * 0.5 if hi > 0 else lo * 0.5
    motion, expression, _, _ = _edit(env, **{name: value})
    want = build_expression(Sliders(**{name: value}))
    assert torch.equal(expression.e, want.e) and torch.equal(expression.r, want.r)
    src = source_params(env["source"].motion)
    assert torch.equal(motion.exp, src.exp + want.e)              # default form, src_ratio 1
    assert torch.allclose(motion.pitch, src.pitch + want.r[0])
    assert torch.allclose(motion.yaw, src.yaw + want.r[1])
    assert torch.allclose(motion.roll, src.roll + want.r[2])


def test_an_all_zero_edit_is_the_source_and_smile_moves_only_the_mouth(env):
    still, _, _, _ = _edit(env)
    assert (still.kind, still.origin, len(still)) == ("absolute", "expression", 1)
    neutral = _keypoints(env, still)
    assert torch.equal(neutral.x_d, neutral.x_s)                   # default mode: identity
    smiling = _keypoints(env, _edit(env, smile=1.0)[0])
    moved = (smiling.x_d - neutral.x_d).abs().amax(dim=2)[0]
    assert torch.nonzero(moved).flatten().tolist() == SMILE_KP
    # the mouth corners' keypoint 14 goes up the crop (y points down) as the smile grows
    scale = float(env["source"].motion.scale[0])
    assert float(smiling.x_d[0, 14, 1] - neutral.x_d[0, 14, 1]) == pytest.approx(-0.02 * scale,
                                                                                 rel=1e-4)


def test_reference_mode_renders_the_reference_editor_keypoints(env):
    motion = _edit(env, smile=0.7, aaa=30.0, rotate_yaw=8.0, mode="reference")[0]
    want = edit(source_params(env["source"].motion), Sliders(smile=0.7, aaa=30.0, rotate_yaw=8.0),
                mode="reference", stitching=env["lp"]["stitching"])
    assert torch.allclose(_keypoints(env, motion).x_d, want.x_d, atol=2e-6)
    assert torch.allclose(_keypoints(env, motion, stitching=True).x_d, want.x_d_stitched, atol=2e-6)
    default = _keypoints(env, _edit(env, smile=0.7, aaa=30.0, rotate_yaw=8.0)[0])
    assert not torch.allclose(default.x_d, want.x_d, atol=1e-3)    # the two forms do differ


def test_preview_is_the_first_frame_of_the_full_render(env):
    out = X.ExpressionEdit().edit(env["source"], env["lp"], smile=1.0, rotate_yaw=15.0)
    motion, _, preview, info = out["result"]
    source, lp = env["source"], env["lp"]
    keypoints = Stitch().stitch(source, motion, lp)[0]
    full = Decode().decode(Warp().warp(source, keypoints, lp)[0], lp)[0]
    assert preview.shape == (1, 512, 512, 3)
    same = float((preview - full[:1]).abs().max())   # Warp keeps fp16 features, the preview fp32
    shown = out["ui"]["images"][0]
    assert shown["type"] == "temp" and os.path.isfile(os.path.join(host.temp_dir(), shown["filename"]))
    neutral = _edit(env)[2]
    assert same <= 1 / 255 and float((preview - neutral).abs().max()) > 50 * same
    assert "edited the source" in info


def test_sample_image_lends_its_mouth_and_is_registered_once(env, monkeypatch):
    photo = image_to_tensor(images.to_float(env["photo"]))
    X._SAMPLES.clear()
    _, expression, _, _ = _edit(env, sample_image=photo, sample_parts="OnlyMouth", sample_ratio=0.5)
    own = source_params(env["source"].motion)            # the same photo: the same face
    want = build_expression(Sliders(), own, Mix(sample_ratio=0.5, sample_parts="OnlyMouth"))
    assert torch.allclose(expression.e, want.e, atol=1e-6)
    assert set(torch.nonzero(expression.e.abs().sum(1)).flatten().tolist()) <= {14, 17, 19, 20}

    def no_second_registration(*_a, **_k):
        raise AssertionError("the sample was registered again")

    monkeypatch.setattr(X, "register_source", no_second_registration)
    again = _edit(env, smile=0.3, sample_image=photo, sample_parts="OnlyMouth", sample_ratio=0.5)[1]
    assert torch.allclose(again.e - build_expression(Sliders(smile=0.3)).e, want.e, atol=1e-6)


def test_a_video_source_is_edited_frame_by_frame(env):
    video, _ = FaceRegister().register(_driving_frames(4), 30.0, models=env["lp"])
    motion, expression, preview, _ = X.ExpressionEdit().edit(video, env["lp"], blink=-8.0)["result"]
    assert len(motion) == 4 and motion.fps == 30.0 and motion.source_index.tolist() == [0, 1, 2, 3]
    own = source_params(video.motion)
    assert torch.equal(motion.exp, own.exp + expression.e)        # each frame keeps its own face
    assert preview.shape == (1, 512, 512, 3)


def test_source_without_renderer_data_is_refused_clearly(env):
    from dataclasses import replace

    bare = replace(env["source"], motion=None, appearance=None)
    with pytest.raises(ShapeError, match="connect the renderer models"):
        X.ExpressionEdit().edit(bare, env["lp"])


# ---------------------------------------------------------------------------------------
# offsets on a MOTION


def _row_change(a, b):
    return (a - b).abs().amax(dim=2)


def test_offsets_on_driving_video_motion(env, video_motion):
    assert video_motion.kind == "driving" and video_motion.driving.relative
    plain, _, _, _ = _edit(env, motion=video_motion)
    assert (plain.kind, plain.driving, len(plain)) == ("absolute", None, len(video_motion))
    assert plain.origin == "video+expression" and plain.fps == video_motion.fps
    # the zero edit renders what the driving motion itself renders, on every frame
    for stitching in (False, True):
        want = _keypoints(env, video_motion, stitching).x_d
        assert torch.allclose(_keypoints(env, plain, stitching).x_d, want, atol=2e-5)
    # a smile moves the smile keypoints of every frame by scale x offset, nothing else
    smiling, expression, _, _ = _edit(env, smile=1.0, motion=video_motion)
    a, b = _keypoints(env, plain).x_d, _keypoints(env, smiling).x_d
    change = _row_change(b, a)
    assert bool((change[:, SMILE_KP] > 1e-4).all())
    others = [k for k in range(21) if k not in SMILE_KP]
    assert float(change[:, others].max()) < 1e-5
    assert torch.allclose(b - a, smiling.scale[:, :, None] * expression.e, atol=1e-5)


def test_a_constant_offset_on_a_relative_driver_would_cancel(env, video_motion):
    """Why a driving motion is composed first: offsets on its frames do nothing."""
    e = build_expression(Sliders(smile=1.0)).e
    naive = video_motion.replace(exp=video_motion.exp + e, restitch=None)
    assert torch.allclose(_keypoints(env, naive).x_d, _keypoints(env, video_motion).x_d, atol=1e-5)


def test_offsets_on_joyvasa_driving_motion(env, video_motion):
    joy = video_motion.replace(driving=DrivingSpec(relative=True, formula="joyvasa"), origin="joyvasa")
    plain = _edit(env, motion=joy)[0]
    assert torch.allclose(_keypoints(env, plain).x_d, _keypoints(env, joy).x_d, atol=2e-5)
    winking, expression, _, _ = _edit(env, wink=20.0, motion=joy)
    assert torch.allclose(winking.exp, plain.exp + expression.e, atol=1e-6)
    assert torch.allclose(winking.roll, plain.roll - 2.0, atol=1e-4)        # wink rolls the head
    assert torch.allclose(winking.yaw, plain.yaw - 2.0, atol=1e-4)


def test_offsets_on_ditto_motion_change_exactly_the_offsets(env, ditto_motion):
    assert ditto_motion.kind == "absolute" and ditto_motion.restitch is not None
    moved, expression, _, info = _edit(env, smile=0.6, rotate_yaw=10.0, motion=ditto_motion)
    assert torch.equal(moved.exp, ditto_motion.exp + expression.e)
    assert torch.allclose(moved.yaw, ditto_motion.yaw - 10.0)               # the yaw slider is negated
    for name in ("pitch", "roll", "scale", "t"):
        assert torch.equal(getattr(moved, name), getattr(ditto_motion, name)), name
    assert torch.equal(moved.source_index, ditto_motion.source_index)
    assert moved.restitch is None and moved.crop_edge == ditto_motion.crop_edge
    assert moved.origin == "ditto+expression" and "offsets added" in info


def test_animation_on_a_motion_keeps_its_length(env, ditto_motion):
    smile = X.LoadExpressionPreset().load("smile")[0]
    out, _ = X.AnimateExpressions().animate(env["source"], "1 = 4 : 0", expression_1=smile,
                                            motion=ditto_motion)
    assert len(out) == len(ditto_motion) and out.fps == ditto_motion.fps
    assert torch.equal(out.exp[0], ditto_motion.exp[0] + smile.e * 0.25)
    assert torch.equal(out.exp[4:], ditto_motion.exp[4:] + smile.e)


# ---------------------------------------------------------------------------------------
# presets


def test_preset_save_load_round_trip(env):
    expression = _edit(env, smile=0.55, blink=-6.0, rotate_roll=3.0)[1]
    kept, path = X.SaveExpressionPreset().save(expression, "My Smile", "for the test")
    assert kept is expression
    assert os.path.dirname(path) == host.presets_dir() and os.path.basename(path) == "My Smile.json"
    assert not [f for f in os.listdir(host.presets_dir()) if f.startswith(".")]   # no temp left
    assert "My Smile" in X.LoadExpressionPreset.INPUT_TYPES()["required"]["preset"][0]
    loaded, description = X.LoadExpressionPreset().load("My Smile")
    assert description == "for the test"
    assert torch.equal(loaded.e, expression.e) and torch.equal(loaded.r, expression.r)
    half = X.LoadExpressionPreset().load("My Smile", amount=0.5)[0]
    assert torch.allclose(half.e, expression.e * 0.5)
    with pytest.raises(ExpressionError, match="exists; turn on overwrite"):
        X.SaveExpressionPreset().save(expression, "My Smile", overwrite=False)


def _write_preset(name, data):
    os.makedirs(host.presets_dir(), exist_ok=True)
    with open(os.path.join(host.presets_dir(), name + ".json"), "w") as fh:
        json.dump(data, fh)


@pytest.mark.parametrize("change,match", [
    ({"script": "import os"}, r"unknown preset key\(s\) \['script'\]"),
    ({"e": [[0.0, 0.0, 0.0]] * 20}, r"'e' must be 21 rows of 3 numbers .* got 20 rows"),
    ({"r": [1.0, 2.0]}, r"'r' must be a list of 3 numbers, got a list of 2"),
])
def test_bad_presets_are_refused_with_the_reason(env, change, match):
    data = {"version": 1, "name": "bad", "e": [[0.0, 0.0, 0.0]] * 21, **change}
    _write_preset("bad", data)
    with pytest.raises(PresetError, match=match):
        X.LoadExpressionPreset().load("bad")


@pytest.mark.parametrize("name", ["../escape", "sub/dir", "..\\escape", "/etc/passwd", ".hidden", ""])
def test_preset_names_cannot_leave_the_presets_folder(env, name):
    before = sorted(os.listdir(env["root"]))
    with pytest.raises(PresetError, match="cannot be a preset name"):
        X.SaveExpressionPreset().save(ExpressionSet.zeros(), name)
    assert sorted(os.listdir(env["root"])) == before
    assert not os.path.exists(os.path.join(str(env["root"]), "escape.json"))


def test_shipped_presets_are_listed():
    names = X.LoadExpressionPreset.INPUT_TYPES()["required"]["preset"][0]
    assert {"smile", "surprise", "wink", "talk-a"} <= set(names) and isinstance(names, list)


# ---------------------------------------------------------------------------------------
# Animate Expressions


def _animate(env, script, mode="default", **chain):
    return X.AnimateExpressions().animate(env["source"], script, mode=mode, **chain)


def test_bad_script_lines_are_named(env):
    smile = X.LoadExpressionPreset().load("smile")[0]
    with pytest.raises(ScriptError, match=r'line 3: expected "INDEX = CHANGE : KEEP", got "2 = x : 3"'):
        _animate(env, "1 = 10 : 5\n\n2 = x : 3", expression_1=smile)
    with pytest.raises(ScriptError, match="line 1: INDEX 2 names no expression set"):
        _animate(env, "2 = 10 : 5", expression_1=smile)
    with pytest.raises(ScriptError, match=r"Command Err Line 2: 1 = 5"):
        _animate(env, "1 = 10 : 5\n1 = 5", mode="reference", expression_1=smile)
    with pytest.raises(ScriptError, match=r"line 2: CHANGE = 0 divides by zero in reference mode"):
        _animate(env, "1 = 10 : 5\n0 = 0 : 5", mode="reference", expression_1=smile)


def test_reference_script_renders_the_reference_frame_keypoints(env):
    from talking_head.pipelines.expression import AnimateSettings, animate_script

    wink = X.LoadExpressionPreset().load("wink")[0]
    out, _ = _animate(env, "1 = 3 : 1\n0 = 2 : 0", mode="reference", expression_1=wink)
    want = animate_script(source_params(env["source"].motion), "1 = 3 : 1\n0 = 2 : 0", [wink],
                          settings=AnimateSettings(mode="reference"))
    assert len(out) == 6
    assert torch.allclose(_keypoints(env, out).x_d, want.x_d, atol=2e-6)


def test_change_zero_is_a_jump_in_default_mode(env):
    smile = X.LoadExpressionPreset().load("smile")[0]
    out, info = _animate(env, "1 = 0 : 3\n0 = 0 : 2", expression_1=smile)
    src = source_params(env["source"].motion)
    assert len(out) == 5 and out.fps == 25.0 and "5 frames" in info
    assert all(torch.equal(out.exp[i], src.exp[0] + smile.e) for i in range(3))
    assert all(torch.equal(out.exp[i], src.exp[0]) for i in (3, 4))


def test_expressions_connect_in_order(env):
    smile = X.LoadExpressionPreset().load("smile")[0]
    with pytest.raises(ExpressionError, match="expression_2 is connected but expression_1 is not"):
        _animate(env, "1 = 5 : 0", expression_2=smile)


def test_json_keyframes_name_presets_and_ease(env):
    keys = '[{"frame": 0, "ease": "ease-in-out"}, {"frame": 10, "preset": "smile"}]'
    out, _ = _animate(env, keys)
    smile = X.LoadExpressionPreset().load("smile")[0]
    src = source_params(env["source"].motion)
    assert len(out) == 11
    assert torch.allclose(out.exp[10], src.exp[0] + smile.e, atol=1e-7)
    assert torch.allclose(out.exp[5], src.exp[0] + smile.e * 0.5, atol=1e-7)   # smoothstep(½) = ½
    assert torch.allclose(out.exp[2], src.exp[0] + smile.e * (0.04 * 3 - 2 * 0.008), atol=1e-7)
