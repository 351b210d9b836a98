"""Expression presets: the shipped files rebuild from the sliders they name, a saved preset
loads back exactly, and bad presets (unknown keys, wrong shapes, non-finite values, odd
JSON, oversized files) are refused with what is wrong; nothing in a file is executed.
Synthetic parameters only: no shared data needed.
"""
import json
import math
import os
import re

import pytest
import torch

from talking_head.pipelines.expression import (
    SHIPPED_PRESETS, ExpressionSet, PresetError, Sliders, build_expression, list_presets,
    load_preset, preset_to_dict, save_preset)

Y = 1


def test_shipped_presets_load_and_say_which_sliders_made_them():
    found = list_presets()
    assert {"smile", "surprise", "wink", "talk-a"} <= set(found)
    for name, path in found.items():
        preset = load_preset(path)
        made = dict(re.findall(r"(\w+) = (-?[0-9.]+)", preset.description.split(";")[0]))
        assert made, f"{name}: the description does not list its slider values"
        sliders = Sliders(**{k: float(v) for k, v in made.items()})
        again = build_expression(sliders)
        assert torch.equal(preset.expression.e, again.e), name
        assert torch.equal(preset.expression.r, again.r), name


def test_preset_round_trip_is_exact(tmp_path):
    es = build_expression(Sliders(smile=0.37, blink=-3.5, rotate_yaw=4.0)) + \
        ExpressionSet(torch.zeros(21, 3), torch.zeros(3), 0.125, -0.01)
    path = save_preset(str(tmp_path / "mine.json"), es, "Mine", "by hand")
    back = load_preset(path)
    assert back.name == "Mine" and back.description == "by hand"
    assert torch.equal(back.expression.e, es.e) and torch.equal(back.expression.r, es.r)
    assert (back.expression.s, back.expression.t) == (es.s, es.t)
    assert list_presets([str(tmp_path), SHIPPED_PRESETS])["mine"] == path


def _preset(**changes):
    data = preset_to_dict(build_expression(Sliders(smile=1.0)), "x")
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("data,match", [
    (_preset(code="print(1)"), "unknown preset key"),
    (_preset(e=[[0.0, 0.0, 0.0]] * 20), "21 rows"),
    (_preset(e=[[0.0, 0.0]] * 21), r"e\[0\].*3 numbers"),
    (_preset(r=[0.0, float("inf"), 0.0]), "finite"),
    (_preset(s=float("nan")), "finite"),
    (_preset(t=True), "must be a number"),
    (_preset(s="0.1"), "must be a number"),
    (_preset(version=2), "version"),
    (_preset(version=True), "version"),
    (_preset(name=None), "lacks"),
    (_preset(name=""), "non-empty"),
    (_preset(e=[[1e39, 0.0, 0.0]] + [[0.0, 0.0, 0.0]] * 20), "float32"),
    ([1, 2, 3], "JSON object"),
])
def test_bad_presets_are_refused(data, match):
    with pytest.raises(PresetError, match=match):
        load_preset(data)


def test_bad_preset_files_are_refused(tmp_path):
    good = json.dumps(_preset())
    files = {"nan.json": good.replace('"s": 0.0', '"s": NaN'),
             "dupe.json": good.replace('"s": 0.0', '"s": 0.0, "s": 1.0'),
             "text.json": "not json", "big.json": " " * (70 * 1024) + good}
    expect = {"nan.json": "finite", "dupe.json": "repeats", "text.json": "not a JSON",
              "big.json": "bytes"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(PresetError, match=expect[name]):
            load_preset(str(tmp_path / name))
    with pytest.raises(PresetError, match="no preset file"):
        load_preset(str(tmp_path / "missing.json"))
    with pytest.raises(PresetError, match=".json"):
        save_preset(str(tmp_path / "x.txt"), ExpressionSet.zeros(), "x")


def test_presets_scale_like_load_exp_data():
    smile = load_preset(os.path.join(SHIPPED_PRESETS, "smile.json")).expression
    half = smile * 0.5
    assert half.e[14, Y].item() == pytest.approx(-0.01) and math.isclose(half.s, 0.0)
