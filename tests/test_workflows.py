"""The example workflows reference only node types and widgets that exist, link outputs to
inputs of the same type, lay their nodes out without overlaps, and are exactly what
example_workflows/generate.py writes."""
import glob
import json
import os
import sys

import pytest

import talking_head
from tests.paths import ROOT

sys.path.insert(0, os.path.join(ROOT, "example_workflows"))
import generate  # noqa: E402
from graphs import WORKFLOWS  # noqa: E402

MAPPINGS = talking_head.NODE_CLASS_MAPPINGS
OUT = generate.HERE
API = sorted(glob.glob(os.path.join(OUT, "api", "*.json")))


def test_every_workflow_has_ui_api_and_thumbnail():
    for name in WORKFLOWS:
        for path in (f"{name}.json", f"api/{name}.json", f"{name}.jpg"):
            assert os.path.isfile(os.path.join(OUT, path)), path
    # the template browser lists example_workflows/*.json only: the API twins stay out of it
    listed = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(OUT, "*.json"))}
    assert listed == set(WORKFLOWS)


def test_committed_files_match_the_graphs(tmp_path):
    generate.write_all(MAPPINGS, str(tmp_path))
    for name in WORKFLOWS:
        for rel in (f"{name}.json", f"api/{name}.json"):
            ours = json.load(open(tmp_path / rel))
            committed = json.load(open(os.path.join(OUT, rel)))
            assert ours == committed, f"{rel} is stale: run python example_workflows/generate.py"


def _input_spec(cls_name):
    spec = MAPPINGS[cls_name].INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


@pytest.mark.parametrize("path", API, ids=os.path.basename)
def test_api_workflow_matches_node_definitions(path):
    prompt = json.load(open(path))
    for node_id, node in prompt.items():
        cls = node["class_type"]
        if cls in generate.CORE_NODES:
            assert set(node["inputs"]) <= set(generate.CORE_NODES[cls][0])
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
                if src["class_type"] in generate.CORE_NODES:
                    out_type = generate.CORE_NODES[src["class_type"]][1][value[1]][1]
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
def test_ui_workflow_widgets_line_up_and_nodes_do_not_overlap(name):
    data = json.load(open(os.path.join(OUT, name + ".json")))
    assert data["version"] == 0.4 and data["nodes"] and data["links"]
    ids = {n["id"] for n in data["nodes"]}
    for link in data["links"]:
        assert link[1] in ids and link[3] in ids
    nodes = {n.key: n for n in WORKFLOWS[name]}
    rects = []
    for node, spec in zip(data["nodes"], WORKFLOWS[name]):
        # the size the frontend draws, from the node's definition, not from the file
        w, h = generate.node_size(spec, MAPPINGS)
        x, y = node["pos"]
        rects.append((x, y, x + w, y + h, node["type"]))
        if node["type"] in generate.CORE_NODES:
            continue
        widgets, _, _ = generate.spec_of(node["type"], MAPPINGS)
        extra = sum(1 for w_, _, _ in widgets if w_ == "seed")
        assert len(node["widgets_values"]) == len(widgets) + extra
        # no absolute paths: inputs come from upload widgets
        assert not any(isinstance(v, str) and os.path.isabs(v) for v in node["widgets_values"])
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, f"{a[4]} and {b[4]} overlap in {name}"
    # every node sits inside its stage's titled group
    for node in data["nodes"]:
        x, y = node["pos"]
        assert any(g["bounding"][0] <= x and g["bounding"][1] < y and
                   x + node["size"][0] <= g["bounding"][0] + g["bounding"][2] and
                   y + node["size"][1] <= g["bounding"][1] + g["bounding"][3] for g in data["groups"]), node["type"]
    assert len(nodes) == len(data["nodes"])
