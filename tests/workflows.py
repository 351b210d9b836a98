"""The example workflows, defined once here and written in both formats.

``python -m tests.workflows`` (from the pack's folder) regenerates
``example_workflows/<name>.json`` (UI/LiteGraph format for the template browser),
``<name>.api.json`` (API format for headless queueing) and ``<name>.jpg`` (a drawing of the
graph, the template browser's thumbnail). ``tests/test_workflows.py`` checks that the
committed files equal what this module writes and that every node type and widget exists.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "example_workflows")
SCALARS = ("INT", "FLOAT", "STRING", "BOOLEAN")

# core ComfyUI nodes the examples use: {class: (widget names in order, outputs, extra UI values)}
CORE_NODES = {
    "LoadAudio": (["audio"], [("AUDIO", "AUDIO")], [None, None]),
}


@dataclass
class Node:
    key: str
    cls: str
    inputs: dict = field(default_factory=dict)   # name -> value, or (node key, output slot)
    column: int = 0
    title: str = ""


def _spec(cls_name: str, mappings):
    """(widget names in order, linkable input names -> type, outputs [(name, type)])."""
    if cls_name in CORE_NODES:
        widgets, outputs, _ = CORE_NODES[cls_name]
        return widgets, {}, outputs
    cls = mappings[cls_name]
    spec = cls.INPUT_TYPES()
    widgets, sockets = [], {}
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind = entry[0]
            if isinstance(kind, (list, tuple)) or kind in SCALARS:
                widgets.append(name)
            else:
                sockets[name] = kind
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    return widgets, sockets, list(zip(names, cls.RETURN_TYPES))


def _defaults(cls_name: str, mappings) -> dict:
    if cls_name in CORE_NODES:
        return {}
    spec = mappings[cls_name].INPUT_TYPES()
    out = {}
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind, opts = entry[0], (entry[1] if len(entry) > 1 else {})
            if isinstance(kind, (list, tuple)):
                out[name] = opts.get("default", kind[0])
            elif kind in SCALARS:
                out[name] = opts.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind])
    return out


def to_api(nodes: list, mappings) -> dict:
    ids = {n.key: str(i + 1) for i, n in enumerate(nodes)}
    prompt = {}
    for n in nodes:
        widgets, _, _ = _spec(n.cls, mappings)
        inputs = {k: v for k, v in _defaults(n.cls, mappings).items()}
        for name, value in n.inputs.items():
            inputs[name] = [ids[value[0]], value[1]] if isinstance(value, tuple) else value
        prompt[ids[n.key]] = {"class_type": n.cls, "inputs": inputs,
                              "_meta": {"title": n.title or n.cls}}
    return prompt


def to_ui(nodes: list, mappings) -> dict:
    ids = {n.key: i + 1 for i, n in enumerate(nodes)}
    links, ui_nodes, outputs_links = [], [], {}
    rows: dict = {}
    for n in nodes:
        for name, value in n.inputs.items():
            if isinstance(value, tuple):
                link_id = len(links) + 1
                src_widgets, src_sockets, src_outputs = _spec(nodes[ids[value[0]] - 1].cls, mappings)
                kind = src_outputs[value[1]][1]
                links.append([link_id, ids[value[0]], value[1], ids[n.key], name, kind])
                outputs_links.setdefault((ids[value[0]], value[1]), []).append(link_id)
    for order, n in enumerate(nodes):
        widgets, sockets, outputs = _spec(n.cls, mappings)
        values = _defaults(n.cls, mappings)
        values.update({k: v for k, v in n.inputs.items() if not isinstance(v, tuple)})
        inputs = []
        for name, kind in sockets.items():
            link = next((l[0] for l in links if l[3] == ids[n.key] and l[4] == name), None)
            inputs.append({"name": name, "type": kind, "link": link})
        for name in widgets:  # widgets fed by a link become sockets too
            link = next((l[0] for l in links if l[3] == ids[n.key] and l[4] == name), None)
            if link is not None:
                kind = next(l[5] for l in links if l[0] == link)
                inputs.append({"name": name, "type": kind, "widget": {"name": name}, "link": link})
        wv = []
        for w in widgets:
            wv.append(values.get(w))
            if w == "seed":  # the frontend adds "control after generate" behind every seed
                wv.append("fixed")
        if n.cls in CORE_NODES:
            wv += CORE_NODES[n.cls][2]
        row = rows.setdefault(n.column, 0)
        rows[n.column] += 1
        height = 60 + 26 * (len(widgets) + max(len(sockets), len(outputs)))
        ui_nodes.append({
            "id": ids[n.key], "type": n.cls, "pos": [40 + 340 * n.column, 40 + 330 * row],
            "size": [300, height], "flags": {}, "order": order, "mode": 0,
            "inputs": inputs,
            "outputs": [{"name": name, "type": kind, "links": outputs_links.get((ids[n.key], slot), []),
                         "slot_index": slot} for slot, (name, kind) in enumerate(outputs)],
            "properties": {"Node name for S&R": n.cls},
            "widgets_values": wv,
            **({"title": n.title} if n.title else {}),
        })
    ui_links = []
    for link_id, src, slot, dst, name, kind in links:
        dst_node = ui_nodes[dst - 1]
        dst_slot = next(i for i, inp in enumerate(dst_node["inputs"]) if inp["name"] == name)
        ui_links.append([link_id, src, slot, dst, dst_slot, kind])
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": ui_nodes,
            "links": ui_links, "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
            "version": 0.4}


def thumbnail(name: str, nodes: list, path: str) -> None:
    """A drawing of the graph (boxes and wires) as the template browser's .jpg."""
    from PIL import Image, ImageDraw

    cols = max(n.column for n in nodes) + 1
    rows: dict = {}
    pos = {}
    for n in nodes:
        r = rows.setdefault(n.column, 0)
        rows[n.column] += 1
        pos[n.key] = (20 + n.column * 150, 40 + r * 56)
    w = 20 + cols * 150
    h = max(40 + max(rows.values()) * 56, 160)
    img = Image.new("RGB", (w, h), (32, 34, 40))
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), name.replace("_", " "), fill=(230, 230, 230))
    for n in nodes:
        for value in n.inputs.values():
            if isinstance(value, tuple):
                (x0, y0), (x1, y1) = pos[value[0]], pos[n.key]
                draw.line([(x0 + 130, y0 + 18), (x1, y1 + 18)], fill=(120, 170, 230), width=2)
    for n in nodes:
        x, y = pos[n.key]
        draw.rounded_rectangle([x, y, x + 130, y + 38], 6, fill=(58, 62, 74), outline=(150, 150, 160))
        label = (n.title or n.cls.replace("THS_", "")).replace("_", " ")
        draw.text((x + 6, y + 12), label[:20], fill=(240, 240, 240))
    img.save(path, quality=90)


def write_all(mappings, out_dir: str = OUT) -> list:
    from tests.workflow_specs import WORKFLOWS

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, nodes in WORKFLOWS.items():
        for suffix, data in ((".json", to_ui(nodes, mappings)), (".api.json", to_api(nodes, mappings))):
            path = os.path.join(out_dir, name + suffix)
            with open(path, "w") as fh:
                json.dump(data, fh, indent=1)
                fh.write("\n")
            written.append(path)
        thumbnail(name, nodes, os.path.join(out_dir, name + ".jpg"))
    return written


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import conftest  # noqa: F401  (registers the pack as ``talking_head``)
    import talking_head

    for p in write_all(talking_head.NODE_CLASS_MAPPINGS):
        print(p)
