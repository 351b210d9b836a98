"""The example workflows reference only node types and widgets that exist, link outputs to
inputs of the same type, and are what tests/workflows.py writes."""
import glob
import json
import os

import pytest

import talking_head
from tests import workflows
from tests.workflow_specs import WORKFLOWS

MAPPINGS = talking_head.NODE_CLASS_MAPPINGS
FILES = sorted(glob.glob(os.path.join(workflows.OUT, "*.api.json")))


def test_every_workflow_has_ui_api_and_thumbnail():
    for name in WORKFLOWS:
        for suffix in (".json", ".api.json", ".jpg"):
            assert os.path.isfile(os.path.join(workflows.OUT, name + suffix)), name + suffix
    assert "liveportrait_video_driven" in WORKFLOWS


def test_committed_files_match_the_specs(tmp_path):
    workflows.write_all(MAPPINGS, str(tmp_path))
    for name in WORKFLOWS:
        for suffix in (".json", ".api.json"):
            ours = json.load(open(tmp_path / (name + suffix)))
            committed = json.load(open(os.path.join(workflows.OUT, name + suffix)))
            assert ours == committed, f"{name}{suffix} is stale: run python -m tests.workflows"


def _input_spec(cls_name):
    spec = MAPPINGS[cls_name].INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_api_workflow_matches_node_definitions(path):
    prompt = json.load(open(path))
    for node_id, node in prompt.items():
        cls = node["class_type"]
        if cls in workflows.CORE_NODES:
            assert set(node["inputs"]) <= set(workflows.CORE_NODES[cls][0])
            continue
        assert cls in MAPPINGS, f"unknown node type {cls}"
        spec = _input_spec(cls)
        required = MAPPINGS[cls].INPUT_TYPES()["required"]
        assert set(required) <= set(node["inputs"]), (cls, set(required) - set(node["inputs"]))
        for name, value in node["inputs"].items():
            assert name in spec, f"{cls} has no input '{name}'"
            kind = spec[name][0]
            if isinstance(value, list):          # a link: [node id, output slot]
                src = prompt[value[0]]
                if src["class_type"] in workflows.CORE_NODES:
                    out_type = workflows.CORE_NODES[src["class_type"]][1][value[1]][1]
                else:
                    out_type = MAPPINGS[src["class_type"]].RETURN_TYPES[value[1]]
                want = "COMBO" if isinstance(kind, (list, tuple)) else kind
                assert out_type == want, f"{cls}.{name} wants {want}, gets {out_type}"
            elif isinstance(kind, (list, tuple)):
                if spec[name][1].get("image_upload"):
                    continue                      # a file the person uploads
                assert value in kind, f"{cls}.{name}={value!r} is not one of {kind}"
            else:
                py = {"INT": int, "FLOAT": (int, float), "STRING": str, "BOOLEAN": bool}[kind]
                assert isinstance(value, py), f"{cls}.{name}={value!r} is not {kind}"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_ui_workflow_widgets_line_up(name):
    data = json.load(open(os.path.join(workflows.OUT, name + ".json")))
    assert data["version"] == 0.4 and data["nodes"] and data["links"]
    ids = {n["id"] for n in data["nodes"]}
    for link in data["links"]:
        assert link[1] in ids and link[3] in ids
    for node in data["nodes"]:
        if node["type"] in workflows.CORE_NODES:
            continue
        widgets, _, _ = workflows._spec(node["type"], MAPPINGS)
        extra = sum(1 for w in widgets if w == "seed")
        assert len(node["widgets_values"]) == len(widgets) + extra
        # no absolute paths: inputs come from upload widgets
        assert not any(isinstance(v, str) and os.path.isabs(v) for v in node["widgets_values"])
