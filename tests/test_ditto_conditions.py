"""Ditto's LMDM condition (golden condition_handler, bit-exact) and eye attributes
(golden eye_attributes), plus emotion parsing and source indexing."""
import json
import os

import numpy as np
import pytest

from talking_head.pipelines.ditto import (
    ConditionHandler, ConditionSource, emotion_schedule, eye_attributes, mirror_index,
    parse_emotion, render_source_indices)
from tests.paths import FIDELITY, needs_shared

DITTO = os.path.join(FIDELITY, "ditto")


def _load(name):
    from safetensors.numpy import load_file
    return load_file(os.path.join(DITTO, name))


def _source(sc, eye_open, eye_ball):
    info = {"kp": sc.reshape(1, 63), "pitch": np.zeros((1, 66)), "yaw": np.zeros((1, 66)),
            "roll": np.zeros((1, 66)), "t": np.zeros((1, 3)), "exp": np.zeros((1, 63)),
            "scale": np.ones((1, 1))}
    return ConditionSource(info, eye_open, eye_ball)


@needs_shared
def test_condition_handler_golden_bit_exact():
    g = _load("condition_handler.safetensors")
    img = _source(g["sc"], g["eye_open"], g["eye_ball"])
    vid = _source(g["sc"], g["video_eye_open_lst"], g["video_eye_ball_lst"])
    ch = _source(g["ch_info_sc"], g["ch_info_eye_open"], g["ch_info_eye_ball"])
    table = g["emo_table"]
    calls = {
        "cond.emo_int4.n80.idx0": (img, 4, False, 80, 0),
        "cond.emo_table.n200.idx0": (img, table, False, 200, 0),
        "cond.emo_table.n80.idx-10": (img, table, False, 80, -10),
        "cond.emo_table.n80.idx560": (img, table, False, 80, 560),
        "cond.emo_list_3_4.n80.idx0": (img, [3, 4], False, 80, 0),
        "cond.video3_mirror.n80.idx0": (vid, 4, False, 80, 0),
        "cond.video3_mirror.n80.idx-5": (vid, 4, False, 80, -5),
        "cond.video3_eye_f0_mode.n80.idx7": (vid, 4, True, 80, 7),
        "cond.ch_info.n80.idx0": (ch, 4, False, 80, 0),
    }
    for key, (src, emo, f0, n, idx) in calls.items():
        out = ConditionHandler(src, emo, f0)(g["aud_feat"][:n], idx)
        assert out.dtype == np.float32 and out.shape == (n, 1103)
        assert np.array_equal(out, g[key]), key


@needs_shared
def test_eye_attributes_golden():
    g = _load("eye_attr.safetensors")
    tol = {c["name"]: c for c in json.load(open(os.path.join(DITTO, "cases.json")))["cases"]}
    atol = tol["eye_attributes"]["tolerance"]["suggested"]["atol_per_output"]
    for i in range(3):   # one set at a time, (1,478,3) as Ditto calls it
        eo, eb = eye_attributes(g["lmk478"][i:i + 1])
        print(f"GOLDEN eye_attributes set{i} eye_open={np.abs(eo - g['eye_open'][i]).max():.3g} "
              f"eye_ball={np.abs(eb - g['eye_ball'][i]).max():.3g}")
        assert np.abs(eo - g["eye_open"][i]).max() <= atol["eye_open"]
        assert np.abs(eb - g["eye_ball"][i]).max() <= atol["eye_ball"]
    eo, eb = eye_attributes(g["lmk478"])          # batched gives the same rows
    assert np.abs(eo - g["eye_open"]).max() <= atol["eye_open"]


def test_eye_attributes_follow_their_definition():
    p = np.zeros((478, 3), np.float32)
    p[33], p[133] = (0.40, 0.5, 0), (0.30, 0.5, 0)                 # left eye 0.1 wide
    for a, b in ((145, 159), (144, 160), (153, 158)):
        p[a], p[b] = (0.35, 0.51, 0), (0.35, 0.49, 0)                # each lid gap 0.02
    p[263], p[362] = (0.6, 0.5, 0), (0.7, 0.5, 0)
    p[468] = (0.37, 0.5, 0)                                          # iris 0.02 outward
    p[473] = (0.65, 0.5, 0)                                          # centred right iris
    eo, eb = eye_attributes(p)
    assert eo[0, 0] == pytest.approx(0.6, rel=1e-5) and eo[0, 1] == pytest.approx(0.0, abs=1e-6)
    # iris along the eye direction: the unit offset cancels the eye axis -> zero
    assert np.abs(eb).max() < 1e-6
    with pytest.raises(ValueError):
        eye_attributes(np.zeros((468, 3)))


def test_emotion_parsing_and_change_of_condition():
    row = parse_emotion(4)
    assert row.shape == (1, 8) and row[0, 4] == pytest.approx(0.997657299)
    assert row[0, 0] == pytest.approx(0.000334676733)
    assert np.array_equal(parse_emotion("Happy"), parse_emotion(3))
    assert np.array_equal(parse_emotion(np.int64(3)), parse_emotion(3))   # reference raised
    assert parse_emotion([[1], [2, 3], 4]).shape == (3, 8)
    with pytest.raises(ValueError):
        parse_emotion(9)
    with pytest.raises(ValueError):
        parse_emotion("bored")
    src = _source(np.arange(63, dtype=np.float32), np.ones((1, 2)), np.zeros((1, 6)))
    aud = np.random.default_rng(0).standard_normal((10, 1024)).astype(np.float32)
    happy, sad = ConditionHandler(src, 3)(aud), ConditionHandler(src, "sad")(aud)
    assert not np.array_equal(happy[:, 1024:1032], sad[:, 1024:1032])
    assert np.array_equal(np.delete(happy, range(1024, 1032), 1), np.delete(sad, range(1024, 1032), 1))
    assert np.argmax(sad[0, 1024:1032]) == 5


def test_emotion_schedule_blends_between_keyframes():
    s = emotion_schedule({0: "neutral", 10: "happy"}, 15)
    assert s.shape == (15, 8)
    assert np.allclose(s[0], parse_emotion(4)[0]) and np.allclose(s[12], parse_emotion(3)[0])
    assert np.allclose(s[5], 0.5 * (parse_emotion(4)[0] + parse_emotion(3)[0]))


def test_mirror_and_template_indexing():
    assert [mirror_index(i, 3) for i in range(8)] == [0, 1, 2, 2, 1, 0, 0, 1]
    assert render_source_indices(6, 10, template_n_frames=2).tolist() == [0, 1, 1, 0, 0, 1]
    assert render_source_indices(6, 10, 2, preserve_motion=True).tolist() == list(range(6))
    assert render_source_indices(4, 1).tolist() == [0, 0, 0, 0]
