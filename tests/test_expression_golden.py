"""Expression editing and command scripts vs AdvancedLivePortrait's golden vectors
(../shared/fidelity/expression), in "reference" mode.

Everything comes from the set's cases.json and the tensor file it names: the case list
(one test per case found there), each case's inputs, its outputs and their tolerances
(``max|ours - golden| / max|golden| <= max_rel``; scalars and parse cases exact). Cases
are dispatched on their ``node``, so another golden set of the same form (other seed,
other inputs, other tolerances) runs unchanged.
"""
import builtins
import functools
import json
import os

import pytest
import torch

from talking_head.pipelines.core.errors import TalkingHeadError
from talking_head.pipelines.expression import (AnimateSettings, FaceParams, Mix, ScriptError,
                                               Sliders, animate_script, edit, expdata,
                                               parse_script, source_keypoints)
from talking_head.pipelines.expression.params import FIELDS
from tests.goldens import golden
from tests.paths import FIDELITY, HAVE_SHARED, needs_shared

pytestmark = needs_shared
FAMILY = "expression"
MODE = "reference"


def _case_names():
    if not HAVE_SHARED:
        return []
    with open(os.path.join(FIDELITY, FAMILY, "cases.json")) as fh:
        cases = json.load(fh)["cases"]
    return [c["name"] for c in (cases.values() if isinstance(cases, dict) else cases)]


NAMES = _case_names()


# ---------------------------------------------------------------------------------------
# inputs


def gs():
    return golden(FAMILY)


def tensors(file: str) -> dict:
    return gs().tensors(file)


def _default_file() -> str:
    """The tensor file holding inputs/*: the one the cases' outputs name."""
    for case in gs().cases:
        for out in case.get("outputs", {}).values():
            if isinstance(out, dict) and "file" in out:
                return out["file"]
    raise AssertionError("no case names a tensor file")


@functools.lru_cache(maxsize=None)
def motion(name: str) -> FaceParams:
    data = tensors(_default_file())
    return FaceParams.from_mapping({k: data[f"inputs/{name}/{k}"] for k in FIELDS})


def motion_name(spec: str) -> str:
    """"inputs/source/*" -> "source"."""
    return spec.split("/")[1] if spec.startswith("inputs/") else spec


@functools.lru_cache(maxsize=None)
def stitching() -> dict:
    data = tensors(_default_file())
    prefix = "inputs/stitching/"
    return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}


def exp_data(spec):
    """An add_exp input: None, an ExpData chain (innermost last) or an earlier editor."""
    if spec is None:
        return None
    if spec["kind"] == "ExpData":
        return expdata(list(zip(spec["codes"], spec["values"])), exp_data(spec.get("add_exp")),
                       mode=MODE)
    if spec["kind"] == "editor_output":
        return run_editor(spec["case"]).expression
    raise AssertionError(f"unknown add_exp kind {spec['kind']!r}")


@functools.lru_cache(maxsize=None)
def run_editor(name: str):
    inputs = gs().case(name)["inputs"]
    params = dict(inputs["params"])
    mix = Mix(params.pop("src_ratio"), params.pop("sample_ratio"), params.pop("sample_parts"))
    params.pop("crop_factor", None)  # face cropping only; no arithmetic role
    sample = inputs.get("sample_motion")
    return edit(motion(motion_name(inputs["source_motion"])), Sliders(**params),
                sample=None if sample is None else motion(motion_name(sample)), mix=mix,
                add=exp_data(inputs.get("add_exp")), mode=MODE, stitching=stitching())


def link_chain():
    """The expression sets of the editors chained through motion_link, in file order."""
    return [run_editor(c["name"]).expression for c in gs().cases if c.get("group") == "link"]


# ---------------------------------------------------------------------------------------
# comparison


def compare(case: dict, ours: dict, scalars: dict) -> list:
    """Every output of ``case`` against ours; returns the failures (empty = pass)."""
    failures = []
    for key, spec in case["outputs"].items():
        if not isinstance(spec, dict):
            if key not in scalars:
                failures.append(f"{key}: scalar output not produced")
            elif scalars[key] != spec:
                failures.append(f"{key}: {scalars[key]} != golden {spec}")
            continue
        if key not in ours or ours[key] is None:
            failures.append(f"{key}: output not produced")
            continue
        gold = tensors(spec["file"])[spec["key"]]
        assert list(gold.shape) == spec["shape"], (key, gold.shape, spec["shape"])
        mine = torch.as_tensor(ours[key])
        if mine.numel() != gold.numel():
            failures.append(f"{key}: {tuple(mine.shape)} vs golden {tuple(gold.shape)}")
            continue
        if "n_frames" in case and mine.shape[0] != case["n_frames"]:
            failures.append(f"{key}: {mine.shape[0]} frames, golden {case['n_frames']}")
            continue
        diff = (mine.double().reshape(gold.shape) - gold.double()).abs().max().item()
        scale = gold.double().abs().max().item()
        rel = diff / scale if scale > 0 else diff
        if not rel <= spec["tolerance"]["max_rel"]:
            failures.append(f"{key}: {rel:.3g} relative > {spec['tolerance']['max_rel']}")
    return failures


def check_source(case):
    ours = {"x_s_user": source_keypoints(motion(motion_name(case["inputs"]["motion"])))}
    return compare(case, ours, {})


def check_editor(case):
    res = run_editor(case["name"])
    ours = {"es_e": res.expression.e, "es_r": res.expression.r, "angles": res.angles,
            "R": res.R, "s_exp": res.s_exp, "x_d": res.x_d, "x_d_stitched": res.x_d_stitched}
    if case["inputs"].get("add_exp") is not None:
        ours["add_exp_e"] = exp_data(case["inputs"]["add_exp"]).e
    return compare(case, ours, {"es_s": res.expression.s, "es_t": res.expression.t})


def check_script(case):
    i = case["inputs"]
    chain = [run_editor(name).expression for name in i["motion_link"][1:]]
    driving = None
    if i.get("driving"):
        driving = motion(motion_name(i["driving"])).select(slice(0, i["n_driving"]))
    settings = AnimateSettings(i["retargeting_eyes"], i["retargeting_mouth"],
                               i["animate_without_vid"], MODE)
    res = animate_script(motion(motion_name(i["source"])), i["command"], chain, driving,
                         settings, stitching())
    failures = [] if len(res.frame_s) == case["n_frames"] else [
        f"n_frames: {len(res.frame_s)} != golden {case['n_frames']}"]
    ours = {"state_e": res.state.e, "state_r": res.state.r, "frame_e": res.frame_e,
            "frame_r": res.frame_r, "frame_s": res.frame_s, "frame_t": res.frame_t,
            "angles": res.angles, "R": res.R, "x_d": res.x_d, "x_d_stitched": res.x_d_stitched}
    scalars = {"state_s": res.state.s.tolist(), "state_t": res.state.t.tolist()}
    return failures + compare(case, ours, scalars)


def check_parse(case):
    i, want = case["inputs"], case["expected"]
    chain = link_chain()[: i["motion_link_length"] - 1]
    if "error" in want:
        with pytest.raises(TalkingHeadError) as info:
            parse_script(i["command"], chain, MODE)
        err = info.value
        failures = []
        if not isinstance(err, getattr(builtins, want["error"])):
            failures.append(f"raised {type(err).__mro__}, reference raises {want['error']}")
        if not isinstance(err, ScriptError):
            failures.append(f"{type(err).__name__} is no ScriptError")
        if str(err) != want["message"]:
            failures.append(f"message {str(err)!r} != reference {want['message']!r}")
        return failures
    script = parse_script(i["command"], chain, MODE)
    got = {"total_length": script.length, "commands": [
        {"change": c.change, "keep": c.keep,
         # the reference stores target / CHANGE; the golden multiplies back and rounds
         "target_r_times_change": [round(v, 6) + 0.0 for v in
                                   ((c.target / c.change).r * c.change).tolist()]}
        for c in script.commands]}
    return [] if got == want else [f"parsed {got} != reference {want}"]


CHECKS = {
    "LivePortraitWrapper.transform_keypoint": check_source,
    "ExpressionEditor.run": check_editor,
    "AdvancedLivePortrait.run": check_script,
    "AdvancedLivePortrait.parsing_command": check_parse,
}


@pytest.mark.parametrize("name", NAMES)
def test_case(name):
    case = gs().case(name)
    assert case["node"] in CHECKS, f"{name}: no check for node {case['node']!r}"
    failures = CHECKS[case["node"]](case)
    assert not failures, f"{name}: " + "; ".join(failures)


def test_every_case_is_checked():
    assert NAMES, "the golden set lists no cases"
    assert {c["node"] for c in gs().cases} <= set(CHECKS)
