"""Write the example workflows from their graphs (graphs.py), in both formats.

    python example_workflows/generate.py          (from the pack's folder)

For each graph: ``<name>.json`` (the UI/LiteGraph format the template browser lists),
``api/<name>.json`` (the API format for headless queueing; a sub-folder, so the template
browser does not list it twice) and ``<name>.jpg`` (the browser's thumbnail).

Nodes are laid out in columns, one per stage of the story (load -> register -> audio ->
motion -> render -> blend -> write), each column a titled group, from the nodes' real
sizes: :func:`node_size` follows the frontend's row rules (one row per socket, a row per
widget, taller multiline and preview widgets; the title bar and the pack's badge are drawn
above a node's position, outside its size), so no node hides another.
tests/test_workflows.py checks the files equal what this writes and that nothing overlaps.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCALARS = ("INT", "FLOAT", "STRING", "BOOLEAN")

# core ComfyUI nodes the examples use: {class: (widget names, outputs, extra UI values, rows)}
# (Load Audio: combo 24 + audio player 54 + upload button 24 = 102 <= 5 widget rows)
CORE_NODES = {
    "LoadAudio": (["audio"], [("AUDIO", "AUDIO")], [None, None], 5),
}

# The frontend's rules (LGraphNode.computeSize on ComfyUI frontend 1.27.10, measured in
# Chromium with tests/browser_check.py): a node's size is its body; the title bar
# (TITLE_H) and, on custom nodes, the source badge (BADGE_H, 2 px above the title) are
# drawn above its position. Body height = SLOT_H * max(sockets, outputs) + WIDGET_H per
# widget (a linked widget keeps its row and is not a socket row) + PAD.
TITLE_H, BADGE_H, SLOT_H, WIDGET_H, PAD = 30, 22, 20, 24, 14
MULTILINE_H = 120          # a multiline text box (its minimum is 54)
PREVIEW_H = 256            # image previews: upload nodes, Blend's mask, Expression Edit (min 224)
VIDEO_PREVIEW_H = 330      # the video player under Write Video after a run (min 324)
NODE_W, WIDE_W = 320, 380
# ROW_GAP: from one body's bottom to the next body's top: badge + title + 12 px of air;
# GROUP_TITLE: the first body's top: the group's title bar (font 22 * 1.4) + badge + title
COLUMN_GAP, ROW_GAP, GROUP_PAD, GROUP_TITLE = 60, BADGE_H + TITLE_H + 12, 14, 32 + BADGE_H + TITLE_H + 6


@dataclass
class Node:
    key: str
    cls: str
    inputs: dict = field(default_factory=dict)   # name -> value, or (node key, output slot)
    stage: str = "load"
    title: str = ""


def spec_of(cls_name: str, mappings):
    """(widgets [(name, kind, options)], sockets {name: type}, outputs [(name, type)])."""
    if cls_name in CORE_NODES:
        widgets, outputs, _, _ = CORE_NODES[cls_name]
        return [(w, "COMBO", {}) for w in widgets], {}, outputs
    cls = mappings[cls_name]
    spec = cls.INPUT_TYPES()
    widgets, sockets = [], {}
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind, opts = entry[0], (entry[1] if len(entry) > 1 else {})
            if isinstance(kind, (list, tuple)) or kind in SCALARS:
                widgets.append((name, "COMBO" if isinstance(kind, (list, tuple)) else kind, opts))
            else:
                sockets[name] = kind
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    return widgets, sockets, list(zip(names, cls.RETURN_TYPES))


def defaults(cls_name: str, mappings) -> dict:
    widgets, _, _ = spec_of(cls_name, mappings)
    out = {}
    for name, kind, opts in widgets:
        if cls_name in CORE_NODES:
            continue
        entry = {**mappings[cls_name].INPUT_TYPES().get("required", {}),
                 **mappings[cls_name].INPUT_TYPES().get("optional", {})}[name]
        if kind == "COMBO":
            out[name] = opts.get("default", entry[0][0] if entry[0] else "")
        else:
            out[name] = opts.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind])
    return out


def node_size(node: Node, mappings) -> list:
    """[width, height] of the node's body as the frontend draws it (LiteGraph's size: the
    title bar and badge are above it), with room for the previews a run adds."""
    widgets, sockets, outputs = spec_of(node.cls, mappings)
    height = SLOT_H * max(len(sockets), len(outputs), 1) + PAD
    if node.cls in CORE_NODES:
        return [NODE_W, height + WIDGET_H * CORE_NODES[node.cls][3]]
    wide = False
    for name, kind, opts in widgets:       # a linked widget keeps its (greyed) row
        if kind == "STRING" and opts.get("multiline"):
            height += MULTILINE_H
            wide = True
        else:
            height += WIDGET_H * (2 if name == "seed" else 1)   # + "control after generate"
        if opts.get("image_upload"):
            height += WIDGET_H + PREVIEW_H                        # upload button + preview
    cls = mappings[node.cls]
    if node.cls in VIDEO_PREVIEWS:
        height += VIDEO_PREVIEW_H
    elif getattr(cls, "OUTPUT_NODE", False) or node.cls in PREVIEWS:
        height += PREVIEW_H
    return [WIDE_W if wide else NODE_W, height]


# nodes that show a preview image under their widgets after a run
PREVIEWS = {"THS_Blend", "THS_ExpressionEdit"}
VIDEO_PREVIEWS = {"THS_WriteVideo"}      # ComfyUI plays its mp4 in the node
STAGES = {"load": "Load", "register": "Register the face", "audio": "Audio features",
          "motion": "Motion", "render": "Render", "blend": "Blend", "write": "Write the video"}


def layout(nodes: list, mappings) -> tuple:
    """({key: [x, y]}, {key: [w, h]}, groups): a column per stage, in story order."""
    order = [s for s in STAGES if any(n.stage == s for n in nodes)]
    pos, size, groups = {}, {}, []
    x = 0
    for stage in order:
        members = [n for n in nodes if n.stage == stage]
        width = max(node_size(n, mappings)[0] for n in members)
        y = GROUP_TITLE
        for n in members:
            size[n.key] = node_size(n, mappings)
            pos[n.key] = [x + GROUP_PAD, y]
            y += size[n.key][1] + ROW_GAP
        groups.append({"title": STAGES[stage], "bounding": [x, 0, width + 2 * GROUP_PAD, y - ROW_GAP + GROUP_PAD],
                       "color": "#3f4a5a", "font_size": 22, "flags": {}})
        x += width + 2 * GROUP_PAD + COLUMN_GAP
    return pos, size, groups


def to_api(nodes: list, mappings) -> dict:
    ids = {n.key: str(i + 1) for i, n in enumerate(nodes)}
    prompt = {}
    for n in nodes:
        inputs = dict(defaults(n.cls, mappings))
        for name, value in n.inputs.items():
            inputs[name] = [ids[value[0]], value[1]] if isinstance(value, tuple) else value
        prompt[ids[n.key]] = {"class_type": n.cls, "inputs": inputs, "_meta": {"title": n.title or n.cls}}
    return prompt


def to_ui(nodes: list, mappings) -> dict:
    ids = {n.key: i + 1 for i, n in enumerate(nodes)}
    by_key = {n.key: n for n in nodes}
    links, outputs_links = [], {}
    for n in nodes:
        for name, value in n.inputs.items():
            if isinstance(value, tuple):
                kind = spec_of(by_key[value[0]].cls, mappings)[2][value[1]][1]
                links.append([len(links) + 1, ids[value[0]], value[1], ids[n.key], name, kind])
                outputs_links.setdefault((ids[value[0]], value[1]), []).append(len(links))
    pos, size, groups = layout(nodes, mappings)
    ui_nodes = []
    for order, n in enumerate(nodes):
        widgets, sockets, outputs = spec_of(n.cls, mappings)
        values = {**defaults(n.cls, mappings), **{k: v for k, v in n.inputs.items() if not isinstance(v, tuple)}}
        link_of = {l[4]: l for l in links if l[3] == ids[n.key]}
        inputs = [{"name": name, "type": kind, "link": link_of[name][0] if name in link_of else None}
                  for name, kind in sockets.items()]
        inputs += [{"name": w, "type": link_of[w][5], "widget": {"name": w}, "link": link_of[w][0]}
                   for w, _, _ in widgets if w in link_of]       # linked widgets become sockets
        wv = []
        for w, _, _ in widgets:
            wv.append(values.get(w))
            if w == "seed":  # the frontend adds "control after generate" behind every seed
                wv.append("fixed")
        if n.cls in CORE_NODES:
            wv = list(CORE_NODES[n.cls][2])
            wv[0] = values.get(widgets[0][0])
        ui_nodes.append({
            "id": ids[n.key], "type": n.cls, "pos": pos[n.key], "size": size[n.key], "flags": {},
            "order": order, "mode": 0, "inputs": inputs,
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
            "links": ui_links, "groups": groups, "config": {},
            "extra": {"ds": {"scale": 0.6, "offset": [40, 40]}}, "version": 0.4}


def thumbnail(name: str, nodes: list, mappings, path: str) -> None:
    """A drawing of the graph (groups, boxes and wires) as the template browser's .jpg."""
    from PIL import Image, ImageDraw

    pos, size, groups = layout(nodes, mappings)
    scale = 0.18
    w = int(max(g["bounding"][0] + g["bounding"][2] for g in groups) * scale) + 20
    h = int(max(g["bounding"][1] + g["bounding"][3] for g in groups) * scale) + 40
    img = Image.new("RGB", (w, h), (32, 34, 40))
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), name.replace("_", " "), fill=(230, 230, 230))

    def box(x, y, bw, bh):
        return [10 + x * scale, 30 + y * scale, 10 + (x + bw) * scale, 30 + (y + bh) * scale]

    for g in groups:
        draw.rectangle(box(*g["bounding"]), outline=(90, 110, 140))
    for n in nodes:
        for value in n.inputs.values():
            if isinstance(value, tuple):
                (x0, y0), (x1, y1) = pos[value[0]], pos[n.key]
                a, b = box(x0, y0, *size[value[0]]), box(x1, y1, *size[n.key])
                draw.line([(a[2], a[1] + 6), (b[0], b[1] + 6)], fill=(120, 170, 230), width=1)
    for n in nodes:
        draw.rounded_rectangle(box(*pos[n.key], *size[n.key]), 3, fill=(58, 62, 74), outline=(150, 150, 160))
    img.save(path, quality=90)


def write_all(mappings, out_dir: str = HERE) -> list:
    sys.path.insert(0, HERE)
    from graphs import WORKFLOWS

    os.makedirs(os.path.join(out_dir, "api"), exist_ok=True)
    written = []
    for name, nodes in WORKFLOWS.items():
        for path, data in ((os.path.join(out_dir, name + ".json"), to_ui(nodes, mappings)),
                           (os.path.join(out_dir, "api", name + ".json"), to_api(nodes, mappings))):
            with open(path, "w") as fh:
                json.dump(data, fh, indent=1)
                fh.write("\n")
            written.append(path)
        thumbnail(name, nodes, mappings, os.path.join(out_dir, name + ".jpg"))
    return written


def import_pack():
    """The checkout as package ``talking_head`` (as ComfyUI imports it)."""
    import importlib.util

    if "talking_head" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "talking_head", os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
        module = importlib.util.module_from_spec(spec)
        sys.modules["talking_head"] = module
        spec.loader.exec_module(module)
    return sys.modules["talking_head"]


if __name__ == "__main__":
    for p in write_all(import_pack().NODE_CLASS_MAPPINGS):
        print(os.path.relpath(p, ROOT))
