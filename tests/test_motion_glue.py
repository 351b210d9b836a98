"""The MOTION contract, keyframed motion controls, length mismatch mapping, open ratios and
the SOURCE helpers."""
import json

import numpy as np
import pytest
import torch

from talking_head.pipelines.core import controls, timeline
from talking_head.pipelines.core.errors import ShapeError, TalkingHeadError
from talking_head.pipelines.core.motion import DrivingSpec, Motion
from talking_head.pipelines.face import register as source
from talking_head.pipelines.liveportrait.stitching import open_ratios


def _fields(n=10):
    g = torch.Generator().manual_seed(0)
    return dict(scale=torch.ones(n, 1), pitch=torch.randn(n, generator=g), yaw=torch.randn(n, generator=g),
                roll=torch.randn(n, generator=g), t=torch.zeros(n, 3), exp=torch.zeros(n, 21, 3),
                fps=25.0, source_index=torch.zeros(n, dtype=torch.long))


def _motion(n=10, kind="driving"):
    spec = DrivingSpec() if kind == "driving" else None
    return Motion(**_fields(n), kind=kind, origin="test", driving=spec)


@pytest.mark.parametrize("change,message", [
    (dict(kind="sideways"), "unknown kind"),
    (dict(kind="driving", driving=None), "DrivingSpec is missing"),
    (dict(kind="absolute", driving=DrivingSpec()), "carries driving options"),
    (dict(origin=""), "origin"),
    (dict(fps=float("nan")), "fps must be a positive"),
    (dict(fps=0), "fps must be a positive"),
    (dict(crop_edge="square"), "crop_edge"),
    (dict(pitch=torch.zeros(9)), "'pitch' has shape"),
    (dict(exp=torch.zeros(10, 20, 3)), "'exp' has shape"),
    (dict(t=torch.full((10, 3), float("nan"))), "NaN"),
    (dict(source_index=torch.full((10,), -1)), "source_index"),
    (dict(eye_ratio=torch.zeros(10, 2)), "'eye_ratio' has shape"),
])
def test_motion_contract_refuses_missing_or_contradicting_fields(change, message):
    fields = dict(_fields(), kind="driving", origin="test", driving=DrivingSpec())
    fields.update(change)
    with pytest.raises(ShapeError, match=message):
        Motion(**fields)


def test_motion_edits_return_new_validated_values():
    m = _motion(kind="absolute")
    hook = object()
    m = m.replace(restitch=hook)
    assert m.restitch is hook
    moved = m.replace(yaw=m.yaw + 1)          # an edit drops the producer's re-derivation
    assert moved.restitch is None and torch.equal(moved.yaw, m.yaw + 1)
    assert len(m.select(slice(2, 5))) == 3 and m.n_source == 1
    with pytest.raises(ShapeError):
        m.replace(scale=torch.zeros(10, 2))
    with pytest.raises(ShapeError, match="multiplier"):
        DrivingSpec(multiplier=float("inf"))


def test_keyframes_parse_both_forms_and_reject_bad_json():
    a = controls.parse_keyframes('{"0": {"delta_yaw": 10}, "4": {"delta_yaw": -10}}')
    b = controls.parse_keyframes(json.dumps([{"frame": 0, "delta_yaw": 10}, {"frame": 4, "delta_yaw": -10}]))
    assert a == b == {0: {"delta_yaw": 10}, 4: {"delta_yaw": -10}}
    with pytest.raises(TalkingHeadError, match="not valid JSON"):
        controls.parse_keyframes('{"0": {delta_yaw: 1}}')
    with pytest.raises(TalkingHeadError, match="'frame'"):
        controls.parse_keyframes('[{"delta_yaw": 1}]')
    assert controls.parse_keyframes("  ") == {}


def test_interpolated_keyframes_ramp_and_hold():
    per_frame = controls.expand({2: {"delta_yaw": 10.0}, 6: {"delta_yaw": -10.0}}, 9, interpolate=True)
    yaw = [per_frame[i]["delta_yaw"] for i in range(9)]
    assert yaw[:3] == [10.0, 10.0, 10.0] and yaw[4] == pytest.approx(0.0) and yaw[6:] == [-10.0] * 3
    exact = controls.expand({2: {"delta_yaw": 10.0}}, 9, interpolate=False)
    assert exact == {2: {"delta_yaw": 10.0}}


def test_generic_controls_move_angles_in_degrees_and_leave_input_untouched():
    m = _motion()
    before = m.yaw.clone()
    out = controls.apply(m, controls.edit_from({"delta_pitch": 5.0}, {3: {"delta_yaw": 2.0, "alpha_roll": 0.0}},
                                               False, len(m)))
    assert torch.allclose(out.pitch, m.pitch + 5.0)
    assert out.yaw[3] == pytest.approx(float(m.yaw[3]) + 2.0) and torch.equal(out.yaw[:3], m.yaw[:3])
    assert out.roll[3] == 0.0
    assert torch.equal(m.yaw, before)             # cached node inputs are never modified
    with pytest.raises(TalkingHeadError, match="need Ditto motion"):
        controls.apply(m, controls.MotionEdit({"vad_alpha": 0.5}))
    with pytest.raises(TalkingHeadError, match="re-derive"):
        controls.apply(m, controls.MotionEdit(fade_in=3))


@pytest.mark.parametrize("mode,expect", [
    ("hold last source frame", [0, 1, 2, 2, 2, 2]), ("cycle", [0, 1, 2, 0, 1, 2]),
    ("ping-pong", [0, 1, 2, 2, 1, 0])])
def test_length_mismatch_mapping(mode, expect):
    n, idx = timeline.frame_mapping(3, 6, mode)
    assert n == 6 and idx.tolist() == expect
    assert timeline.frame_mapping(3, 6, "cut")[0] == 3
    assert timeline.frame_mapping(1, 6, "cut")[1].tolist() == [0] * 6   # an image source never cuts


def test_open_ratios_from_mediapipe_points():
    lm = np.zeros((1, 478, 2), np.float32)
    lm[0, 33], lm[0, 133], lm[0, 159], lm[0, 145] = (0, 0), (10, 0), (5, -1), (5, 1)     # eye 10 wide, 2 open
    lm[0, 362], lm[0, 263], lm[0, 386], lm[0, 374] = (20, 0), (30, 0), (25, -2), (25, 2)
    lm[0, 61], lm[0, 291], lm[0, 13], lm[0, 14] = (0, 10), (20, 10), (10, 9), (10, 13)
    eye, lip = open_ratios(torch.from_numpy(lm), "mediapipe478")
    assert eye[0].tolist() == pytest.approx([0.2, 0.4], rel=1e-4) and lip[0, 0] == pytest.approx(0.2, rel=1e-4)
    with pytest.raises(TalkingHeadError):
        open_ratios(torch.from_numpy(lm[:, :68]), "ibug68")


def test_manual_box_parsing_and_mask_box():
    assert source.parse_box("10, 20, 30, 40") == (10.0, 20.0, 30.0, 40.0)
    assert source.parse_box("") is None
    with pytest.raises(TalkingHeadError, match="x, y, width, height"):
        source.parse_box("1,2,3")
    mask = torch.zeros(1, 50, 60)
    mask[0, 10:20, 5:25] = 1
    assert source.mask_to_box(mask) == (5.0, 10.0, 20.0, 10.0)
    assert source.mask_to_box(torch.zeros(1, 5, 5)) is None
