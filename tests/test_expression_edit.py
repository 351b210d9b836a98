"""Expression editing beyond the golden set: slider directions and locality (against the
coefficients written out here from ../shared/fidelity/expression/README.md §4), easing,
the default mode's fixes (CHANGE = 0, whitespace lines, line-numbered errors,
retargeting with a video source), keyframes and offsets on T-frame motion (presets: test_expression_presets.py).
Synthetic parameters only: no shared data needed.
"""
import json
import os

import pytest
import torch

from talking_head.pipelines.core.errors import CheckpointError, TalkingHeadError
from talking_head.pipelines.expression import (
    EASINGS, SHIPPED_PRESETS, AnimateSettings, ExpressionSet, ExpressionTrack, FaceParams,
    KeyframeError, Mix, ReferenceCommandError, ReferenceZeroChangeError, ScriptError, Sliders,
    animate, animate_script, apply_offsets, build_expression, ease, edit, expdata, frame_count,
    load_preset, parse_keyframes, parse_script, stitch_keypoints)
from talking_head.pipelines.expression.errors import ExpressionError
from talking_head.pipelines.liveportrait.stitching import STITCH, StitchingMLP

X, Y, Z = 0, 1, 2
# README §4 step 5, copied independently of sliders.py: (keypoint, axis, coefficient)
README_SMILE = {(20, Y): -0.01, (14, Y): -0.02, (17, Y): 0.0065, (17, Z): 0.003,
                (13, Y): -0.00275, (16, Y): -0.00275, (3, Y): -0.0035, (7, Y): -0.0035}
README_BLINK = {(11, Y): -0.001, (13, Y): 0.0003, (15, Y): -0.001, (16, Y): 0.0003,
                (1, Y): -0.00025, (2, Y): 0.00025}
README_AAA = {(19, Y): 0.001, (19, Z): 0.0001, (17, Y): -0.0001}
README_WINK = {(11, Y): 0.001, (13, Y): -0.0003, (17, X): 0.0003, (17, Y): 0.0003,
               (3, Y): -0.0003}
EYE_KEYPOINTS = {1, 2, 11, 13, 15, 16}
MOUTH_KEYPOINTS = {3, 7, 13, 14, 16, 17, 19, 20}


def face(n=1, seed=0, posed=True) -> FaceParams:
    g = torch.Generator().manual_seed(seed)
    kp = (torch.randn(n, 21, 3, generator=g) * 0.3).clamp(-0.9, 0.9)
    exp = torch.randn(n, 21, 3, generator=g) * 0.01

    def angle(span):
        return torch.rand(n, generator=g) * 2 * span - span if posed else torch.zeros(n)

    return FaceParams(kp=kp, exp=exp, pitch=angle(10.0), yaw=angle(15.0), roll=angle(5.0),
                      scale=torch.full((n, 1), 1.5), t=torch.rand(n, 3, generator=g) * 0.02)


def entries(e: torch.Tensor) -> dict:
    return {(k, a): e[k, a].item() for k, a in torch.nonzero(e).tolist()}


def assert_effects(e: torch.Tensor, expected: dict, value: float):
    got = entries(e)
    assert set(got) == set(expected), f"moved {sorted(got)}, README says {sorted(expected)}"
    for key, c in expected.items():
        assert got[key] == pytest.approx(c * value, rel=1e-6), key


def close(a, b, atol=1e-7):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= atol, f"max difference {err:.3g} > {atol}"


def stitcher(seed=3):
    torch.manual_seed(seed)
    return StitchingMLP(STITCH).eval()


# ---------------------------------------------------------------------------------------
# sliders: direction and locality


def test_smile_moves_exactly_the_readme_mouth_entries():
    es = build_expression(Sliders(smile=1.0))
    assert_effects(es.e, README_SMILE, 1.0)
    assert es.r.tolist() == [0.0, 0.0, 0.0]
    # lips and corners go up (y points down in LivePortrait's keypoint space)
    assert es.e[14, Y] < 0 and es.e[20, Y] < 0
    assert {k for k, _ in entries(es.e)} <= MOUTH_KEYPOINTS


def test_smile_changes_only_those_rows_of_the_driving_keypoints():
    src = face(posed=True)
    neutral, smiling = edit(src), edit(src, Sliders(smile=0.8))
    moved = (smiling.x_d - neutral.x_d).abs().amax(dim=2)[0]
    assert {int(k) for k in torch.nonzero(moved > 0)} == {k for k, _ in README_SMILE}
    # without head rotation the keypoint moves straight by scale * coefficient * value
    flat = face(posed=False)
    delta = edit(flat, Sliders(smile=0.8)).x_d - edit(flat).x_d
    assert delta[0, 14, Y].item() == pytest.approx(1.5 * -0.02 * 0.8, rel=1e-5)
    assert delta[0, 14, X].abs().item() < 1e-7


def test_blink_moves_only_eye_keypoints_and_pupil_y_half_blinks():
    es = build_expression(Sliders(blink=-10.0))
    assert_effects(es.e, README_BLINK, -10.0)
    assert {k for k, _ in entries(es.e)} <= EYE_KEYPOINTS
    assert es.e[11, Y] > 0  # negative blink closes: upper-lid keypoint 11 moves down
    # pupil_y = v acts on blink as blink - v/2, besides moving the pupils up
    up = build_expression(Sliders(pupil_y=8.0)).e
    assert up[1, Y].item() == pytest.approx(-0.00025 * -4.0, rel=1e-6)
    assert up[11, Y].item() == pytest.approx(-0.001 * 8.0 + -0.001 * -4.0, rel=1e-6)


def test_aaa_opens_the_mouth_and_tilts_pitch():
    es = build_expression(Sliders(aaa=60.0))
    assert_effects(es.e, README_AAA, 60.0)
    assert es.r.tolist() == pytest.approx([-3.0, 0.0, 0.0])


def test_wink_moves_one_eye_and_rolls_and_turns_the_head():
    es = build_expression(Sliders(wink=20.0))
    assert_effects(es.e, README_WINK, 20.0)
    assert es.r.tolist() == pytest.approx([0.0, -2.0, -2.0])


@pytest.mark.parametrize("value,expected", [(10.0, {(11, X): 0.0007, (15, X): 0.001}),
                                            (-10.0, {(11, X): 0.001, (15, X): 0.0007})])
def test_pupil_x_branches(value, expected):
    assert_effects(build_expression(Sliders(pupil_x=value)).e, expected, value)


@pytest.mark.parametrize("value,expected", [
    (12.0, {(1, Y): 0.001, (2, Y): -0.001}),
    (-8.0, {(1, X): -0.001, (2, X): 0.001, (1, Y): 0.0003, (2, Y): -0.0003})])
def test_eyebrow_branches(value, expected):
    assert_effects(build_expression(Sliders(eyebrow=value)).e, expected, value)


@pytest.mark.parametrize("name,index,sign", [("rotate_pitch", 0, 1), ("rotate_yaw", 1, -1),
                                             ("rotate_roll", 2, 1)])
def test_rotate_sliders_change_only_their_angle(name, index, sign):
    src = face(n=3, posed=True)
    res = edit(src, Sliders(**{name: 7.5}))
    assert not res.expression.e.any()
    want = [0.0, 0.0, 0.0]
    want[index] = sign * 7.5  # the yaw slider is negated
    assert res.expression.r.tolist() == want
    before, after = src.angles(), res.params.angles()
    for axis in range(3):
        moved = (after[:, axis] - before[:, axis]).abs().max().item()
        assert (moved > 1) == (axis == index)
    assert torch.equal(res.params.exp, src.exp) and torch.equal(res.params.kp, src.kp)


def test_src_ratio_fades_the_source_but_keeps_keypoint_5():
    src = face()
    res = edit(src, mix=Mix(src_ratio=0.0))
    assert torch.equal(res.s_exp[0, 5], src.kp[0, 5] + src.exp[0, 5])
    others = [k for k in range(21) if k != 5]
    assert torch.equal(res.s_exp[0, others], src.kp[0, others])


@pytest.mark.parametrize("parts,keypoints,rotates", [
    ("OnlyMouth", {14, 17, 19, 20}, False), ("OnlyEyes", {1, 2, 11, 13, 15, 16}, False),
    ("OnlyRotation", set(), True), ("OnlyExpression", set(range(21)), False),
    ("All", set(range(21)), True)])
def test_sample_parts(parts, keypoints, rotates):
    sample = face(seed=5)
    es = build_expression(sample=sample, mix=Mix(sample_ratio=0.5, sample_parts=parts))
    moved = {int(k) for k in torch.nonzero(es.e.abs().amax(dim=1) > 0)}
    assert moved == keypoints
    if keypoints:
        k = min(keypoints - {5})
        assert es.e[k].tolist() == pytest.approx((sample.exp[0, k] * 0.5).tolist())
    assert es.r.abs().max().item() > 0 if rotates else not es.r.any()
    if rotates:  # the sample's yaw is added as it is (not negated like the slider)
        assert es.r[1].item() == pytest.approx(0.5 * sample.yaw.item(), rel=1e-6)


def test_sample_must_be_one_frame():
    with pytest.raises(ExpressionError, match="1 frame"):
        build_expression(sample=face(n=2))


def test_unknown_or_non_finite_sliders_are_refused():
    with pytest.raises(ExpressionError, match="unknown slider"):
        Sliders.from_mapping({"smiel": 1.0})
    with pytest.raises(ExpressionError, match="finite"):
        Sliders(smile=float("nan"))
    with pytest.raises(ExpressionError, match="sample_parts"):
        Mix(sample_parts="OnlyNose")


# ---------------------------------------------------------------------------------------
# expression sets and ExpData


def test_set_arithmetic_is_field_wise_and_leaves_operands_alone():
    a = build_expression(Sliders(smile=1.0, rotate_roll=2.0))
    b = ExpressionSet(torch.ones(21, 3) * 0.01, torch.tensor([1.0, 2.0, 3.0]), 0.5, 0.25)
    e_before = a.e.clone()
    c = (a + b) * 2 - b / 4
    assert torch.equal(a.e, e_before)
    assert c.s == pytest.approx(2 * 0.5 - 0.125) and c.t == pytest.approx(0.5 - 0.0625)
    assert c.r.tolist() == pytest.approx([2 * 1 - 0.25, 2 * 2 - 0.5, 2 * 5 - 0.75])
    with pytest.raises(ExpressionError):
        a / 0


def test_expdata_codes():
    es = expdata([(191, 12.5), (140, -7.0), (0, 0.0)])
    got = entries(es.e)
    assert set(got) == {(19, Y), (14, X)}
    assert got[(19, Y)] == pytest.approx(0.0125) and got[(14, X)] == pytest.approx(-0.007)
    for bad in (13, 213, -18):
        with pytest.raises(ExpressionError, match="code"):
            expdata([(bad, 1.0)])
    # a negative code wraps like a Python index in reference mode (-18 -> keypoint -1, z)
    wrapped = entries(expdata([(-18, 1.0)], mode="reference").e)
    assert list(wrapped) == [(20, Z)] and wrapped[(20, Z)] == pytest.approx(0.001)


# ---------------------------------------------------------------------------------------
# easing and scripts


def test_easing_shapes():
    xs = [i / 20 for i in range(21)]
    for name in EASINGS:
        assert ease(name, 0.0) == 0.0 and ease(name, 1.0) == 1.0
        ws = [ease(name, x) for x in xs]
        assert all(b >= a for a, b in zip(ws, ws[1:])), name
    for x in xs[1:-1]:
        assert ease("ease-in", x) < x < ease("ease-out", x)
        assert ease("ease-in-out", x) + ease("ease-in-out", 1 - x) == pytest.approx(1.0)
        assert ease("hold", x) == 0.0
    assert ease("ease-in-out", 0.5) == 0.5
    assert ease("ease-in-out", 0.1) < 0.05 and ease("ease-in-out", 0.9) > 0.95
    # slow at both ends: the first and last steps are smaller than the middle one
    assert ease("ease-in-out", 0.05) < ease("ease-in-out", 0.55) - ease("ease-in-out", 0.5)


def test_script_ramp_follows_the_easing_and_first_frame_already_moves():
    target = build_expression(Sliders(rotate_pitch=10.0))
    for curve in ("linear", "ease-in-out"):
        track = parse_script(f"1 = 8 : 2 : {curve}", [target]).expand(12)
        frac = (track.r[:, 0] / 10.0).tolist()
        want = [ease(curve, j / 8) for j in range(1, 9)] + [1.0] * 4
        assert frac == pytest.approx(want, abs=1e-6)
        assert track.r[7, 0].item() == 10.0  # exact at the end of the transition


def test_default_linear_matches_reference_to_rounding():
    sets = [build_expression(Sliders(wink=25.0)), build_expression(Sliders(aaa=40.0, smile=1.0))]
    text = "1 = 5:5\n2 = 3:0\n-1 = 2:1\n0 = 4:2"
    ref = parse_script(text, sets, "reference").expand(30)
    ours = parse_script(text, sets).expand(30)
    for a, b in ((ref.e, ours.e), (ref.r, ours.r)):
        assert (a - b).abs().max().item() <= 1e-6 * b.abs().max().item()
    assert ours.e[-1].abs().max().item() == 0.0  # the closed form lands exactly on 0


def test_change_zero_is_a_jump_in_default_mode():
    target = build_expression(Sliders(smile=1.0))
    track = parse_script("1 = 0 : 3\n0 = 2 : 0", [target]).expand(6)
    for i in range(3):
        assert torch.equal(track.e[i], target.e)
    close(track.e[3], target.e / 2)
    assert not track.e[4].any() and not track.e[5].any()
    # a jump without KEEP frames still moves the start of the next command
    track = parse_script("1 = 0 : 0\n0 = 2 : 0", [target]).expand(2)
    close(track.e[0], target.e / 2)


def test_change_zero_in_reference_mode_raises_like_the_reference():
    with pytest.raises(ReferenceZeroChangeError) as info:
        parse_script("1 = 0 : 3", [build_expression(Sliders(smile=1.0))], "reference")
    assert isinstance(info.value, ZeroDivisionError) and isinstance(info.value, TalkingHeadError)


def test_whitespace_lines_are_skipped_in_default_mode_only():
    text = "1 = 2:1\n \n\t\n\r\n0 = 1:0 \r\n"
    sets = [build_expression(Sliders(blink=-10.0))]
    script = parse_script(text, sets)
    assert [(c.line, c.change, c.keep) for c in script.commands] == [(1, 2, 1), (5, 1, 0)]
    with pytest.raises(ReferenceCommandError) as info:
        parse_script(text, sets, "reference")
    assert str(info.value) == "(AdvancedLivePortrait) Command Err Line 2:  "
    assert isinstance(info.value, AssertionError)
    assert parse_script("1 = 2:3\r\n0 = 1:0\r\n", sets, "reference").length == 6


def test_errors_name_the_line_and_what_is_expected():
    sets = [build_expression(Sliders(smile=1.0))] * 3
    with pytest.raises(ScriptError) as info:
        parse_script("1 = 2:1\n\n2 = x", sets)
    assert str(info.value).startswith('line 3: expected "INDEX = CHANGE : KEEP", got "2 = x"')
    cases = {"1 = 5": "line 1: expected", "1 = 2:1\n5 = 1:1": "line 2: INDEX 5 names no",
             "-4 = 1:1": "line 1: INDEX -4", "1 = -2:1": "line 1: CHANGE and KEEP",
             "1 = 2:1:wobble": 'line 1: unknown easing "wobble"', "1 = 2.5:1": "line 1: expected",
             "1 = 2:1 = 3": "line 1: expected", "0 = 1:1\n1=1:1": None}
    for text, start in cases.items():
        if start is None:
            parse_script(text, sets)
            continue
        with pytest.raises(ScriptError) as info:
            parse_script(text, sets)
        assert str(info.value).startswith(start), (text, str(info.value))
    with pytest.raises(ScriptError, match="no expression sets are connected"):
        parse_script("1 = 2:1", [])
    assert parse_script("1 = 2:1  # smile\n# a whole comment line", sets).length == 3


def test_reference_mode_errors_are_the_reference_message():
    with pytest.raises(ReferenceCommandError) as info:
        parse_script("1 = 2:1\n2 = x", [build_expression(Sliders(smile=1.0))], "reference")
    assert str(info.value) == "(AdvancedLivePortrait) Command Err Line 2: 2 = x"
    with pytest.raises(ScriptError, match="must be >= 0"):
        parse_script("0 = -1:1", [], "reference")  # the reference would stall the script


def test_frame_count_rules():
    assert frame_count(1, 0, 18, True) == 18
    assert frame_count(1, 0, 18, False) == 1
    assert frame_count(6, 0, 5, False) == 6
    assert frame_count(1, 5, 7, True) == 7 and frame_count(1, 5, 7, False) == 5
    assert frame_count(1, 0, 0, True) == 1


# ---------------------------------------------------------------------------------------
# animation: composition, retargeting, offsets


def test_animate_script_holds_after_the_end_and_sizes_by_the_rules():
    src = face()
    sets = [build_expression(Sliders(smile=1.0))]
    res = animate_script(src, "1 = 3:1", sets, stitching=stitcher())
    assert len(res.frame_s) == 4 and res.x_d_stitched.shape == (4, 21, 3)
    assert torch.equal(res.state.e[2], sets[0].e) and torch.equal(res.state.e[3], sets[0].e)
    still = animate_script(src, "1 = 3:1", sets,
                           settings=AnimateSettings(animate_without_vid=False))
    assert len(still.frame_s) == 1
    close(still.state.e[0], sets[0].e / 3)


def _retargeting_run(n_source, mode):
    src, drv = face(n=n_source, seed=1), face(n=4, seed=2)
    settings = AnimateSettings(retarget_eyes=0.6, retarget_mouth=0.3, mode=mode)
    res = animate_script(src, "0 = 1:5", [], drv, settings)
    plain = animate_script(src, "0 = 1:5", [], drv, AnimateSettings(mode=mode))
    return res, (res.frame_e - plain.frame_e).abs().amax(dim=2), drv


@pytest.mark.parametrize("n_source", [1, 6])
def test_retargeting_works_on_every_frame_in_default_mode(n_source):
    res, moved, drv = _retargeting_run(n_source, "default")
    rows = {int(k) for k in torch.nonzero(moved.amax(dim=0) > 0)}
    assert rows == {11, 13, 15, 16, 14, 17, 19, 20}
    assert bool((moved[:, 11] > 0).all()), "every frame, frame 0 included"
    diff = res.params.exp[0, 11] - (face(n=n_source, seed=1).exp[0, 11])
    close(diff, 0.6 * drv.exp[0, 11], atol=1e-7)
    assert not res.notes


def test_retargeting_in_reference_mode_reproduces_its_gaps():
    _, moved, _ = _retargeting_run(1, "reference")
    assert moved[0].max() == 0 and bool((moved[1:, 11] > 0).all())
    res, moved, _ = _retargeting_run(6, "reference")
    assert moved.max() == 0 and any("video source" in n for n in res.notes)


def test_driving_deltas_apply_only_while_the_driving_video_lasts():
    src, drv = face(seed=1), face(n=3, seed=2)
    res = animate_script(src, "", [], drv, AnimateSettings())
    assert len(res.frame_s) == 3
    close(res.frame_r[2], drv.angles()[2] - drv.angles()[0], atol=1e-6)
    long = animate(src, ExpressionTrack.constant(ExpressionSet.zeros(), 5), drv)
    assert not long.frame_r[3:].any()


def test_offsets_on_every_frame_of_a_sequence():
    motion = face(n=5, seed=4)
    es = ExpressionSet(torch.full((21, 3), 0.002), torch.tensor([1.0, -2.0, 0.5]), 0.1, 0.01)
    moved = apply_offsets(motion, es)
    assert len(moved) == 5
    assert torch.equal(moved.exp, motion.exp + es.e)
    assert torch.equal(moved.kp, motion.kp)
    close(moved.angles() - motion.angles(), [[1.0, -2.0, 0.5]] * 5, atol=1e-5)
    close(moved.scale - motion.scale, [[0.1]] * 5, atol=1e-6)
    close(moved.t - motion.t, [[0.01] * 3] * 5, atol=1e-6)
    # a track: frame i gets track frame i, a shorter track holds its last set
    track = ExpressionTrack.from_sets([es * 0.0, es])
    moved = apply_offsets(motion, track)
    assert torch.equal(moved.exp[0], motion.exp[0] + 0.0)
    assert all(torch.equal(moved.exp[i], motion.exp[i] + es.e) for i in range(1, 5))


def test_face_params_refuse_bad_values():
    good = face().as_dict()
    with pytest.raises(TalkingHeadError, match="'exp'"):
        FaceParams(**{**good, "exp": torch.zeros(1, 20, 3)})
    with pytest.raises(TalkingHeadError, match="NaN"):
        FaceParams(**{**good, "yaw": torch.tensor([float("nan")])})
    assert FaceParams(**{**good, "pitch": torch.zeros(1, 1)}).pitch.shape == (1,)


def test_stitching_accepts_module_callable_or_state_dict():
    net = stitcher()
    x_s, x_d = edit(face()).x_s, edit(face()).x_d
    by_module = stitch_keypoints(net, x_s, x_d)
    assert torch.equal(stitch_keypoints(net.state_dict(), x_s, x_d), by_module)
    assert torch.equal(stitch_keypoints(lambda f: net(f), x_s, x_d), by_module)
    with pytest.raises(CheckpointError, match="stitching MLP"):
        stitch_keypoints({"mlp.0.weight": torch.zeros(3, 3)}, x_s, x_d)


# ---------------------------------------------------------------------------------------
# keyframes


def test_keyframes_example_and_values_at_keyframes():
    smile = load_preset(os.path.join(SHIPPED_PRESETS, "smile.json")).expression
    text = json.dumps([{"frame": 0, "preset": "smile", "ease": "ease-in-out"},
                       {"frame": 30, "sliders": {"aaa": 40}}])
    keys = parse_keyframes(text)
    assert keys.length == 31
    track = keys.expand(40)
    aaa = build_expression(Sliders(aaa=40))
    assert torch.equal(track.e[0], smile.e) and torch.equal(track.e[30], aaa.e)
    assert torch.equal(track.e[39], aaa.e)
    mid = track.e[15].double()
    close(mid, (smile.e.double() + aaa.e.double()) / 2)
    quarter = (track.r[5, 0] / aaa.r[0]).item()  # ease-in-out: slow start
    assert quarter == pytest.approx(ease("ease-in-out", 5 / 30), abs=1e-6) and quarter < 5 / 30


def test_keyframes_start_neutral_sets_amount_and_order():
    sets = [build_expression(Sliders(wink=20.0)), build_expression(Sliders(blink=-10.0))]
    keys = parse_keyframes([{"frame": 10, "set": -1, "amount": 0.5}, {"frame": 4, "set": 1}], sets)
    track = keys.expand(12)
    assert not track.e[0].any()
    assert torch.equal(track.e[4], sets[0].e)
    assert torch.equal(track.e[10], (sets[1] * 0.5).e) and torch.equal(track.e[11], track.e[10])


@pytest.mark.parametrize("data,match", [
    ([{"frame": 0, "smiles": 1}], "unknown key"),
    ([{"frame": 0, "preset": "smile", "set": 1}], "at most one"),
    ([{"frame": 0}, {"frame": 0}], "two keyframes"),
    ([{"frame": -1}], "outside"),
    ([{"frame": 1.5}], "whole number"),
    ([{"frame": 0, "preset": "no-such"}], "no preset named"),
    ([{"frame": 0, "sliders": {"smiel": 1}}], "unknown slider"),
    ([{"frame": 0, "ease": "bounce"}], "unknown ease"),
    ([{"frame": 0, "set": 3}], "set 3 does not exist"),
    ([], "non-empty"),
    ("[{\"frame\": 0,]", "not valid JSON"),
])
def test_bad_keyframes_are_refused(data, match):
    with pytest.raises(KeyframeError, match=match):
        parse_keyframes(data)
