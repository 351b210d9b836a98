"""Open every example workflow in a real ComfyUI frontend (headless Chromium) and report.

    python tests/browser_check.py --comfy /path/to/ComfyUI --python /path/to/its/python \\
        [--chromium /usr/bin/chromium] [--out /tmp/shots] [--keep-base]

A standalone script, not a pytest module (pytest only collects ``test_*.py``). It builds
a base folder like tests/test_real_host.py (the pack linked into custom_nodes, fake tiny
models, the workflows' input files), starts ComfyUI on a free loopback port, opens the
page in Chromium through Playwright, and for each example_workflows/*.json: loads it with
``app.loadGraphData``, records console messages, page errors and failed requests, the
nodes' drawn sizes (``node.size``, ``node.computeSize()``, ``node.getBounding()``),
widget values the frontend changed, overlaps between drawn nodes, nodes outside their
group, and writes a screenshot (whole graph fitted) plus a 1:1 one. Writes report.json
next to the screenshots. The server is stopped by its process group at the end.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare(base: str) -> None:
    sys.path.insert(0, ROOT)
    import tests.conftest  # noqa: F401  (imports the pack as ComfyUI does, as ``talking_head``)
    from tests.test_real_host import _prepare

    _prepare(base)
    # no first-run template browser / tutorial over the canvas
    user = os.path.join(base, "user", "default")
    os.makedirs(user, exist_ok=True)
    with open(os.path.join(user, "comfy.settings.json"), "w") as fh:
        # text drawn at any zoom, so the fitted screenshot stays readable
        json.dump({"Comfy.TutorialCompleted": True, "LiteGraph.Canvas.MinFontSizeForLOD": 1}, fh)


def start_server(comfy: str, python: str, base: str):
    from tests.test_real_host import start_comfy

    proc, url, log = start_comfy(comfy, python, base, timeout=300)
    if proc is None:
        log.seek(0)
        raise SystemExit("ComfyUI did not start:\n" + log.read()[-3000:])
    return proc, url, log


# page JS: the nodes as the frontend holds them after the load
MEASURE_JS = """() => {
  const g = window.app.graph;
  return g._nodes.map(n => {
    const b = new Float32Array(4); n.getBounding(b, true);
    // what is drawn: the body, the title bar above it and, when shown, the badges above that
    const top = LiteGraph.NODE_TITLE_HEIGHT + ((n.badges ?? []).length ? 2 + 20 : 0);
    return {id: n.id, type: n.type, title: n.title, pos: [...n.pos], size: [...n.size],
            min: [...n.computeSize()], bounding: [...b], badges: (n.badges ?? []).length,
            drawn: [n.pos[0], n.pos[1] - top, n.size[0], n.size[1] + top],
            widgets: (n.widgets ?? []).map(w => ({name: w.name, type: w.type, value:
                      (typeof w.value === 'object' && w.value !== null) ? String(w.value) : w.value,
                      y: w.y ?? w.last_y ?? null,
                      h: w.computedHeight ?? (w.computeSize ? w.computeSize(n.size[0])[1] : null)})),
            serialized: n.serialize().widgets_values ?? null,
            imgs: (n.imgs ?? []).length};
  });
}"""

PREVIEWS_JS = """() => window.app.graph._nodes.every(n =>
  n.type === 'THS_WriteVideo' ? (n.widgets ?? []).some(w => w.name === 'video-preview') :
  ['THS_Blend', 'THS_ExpressionEdit'].includes(n.type) ? (n.imgs ?? []).length > 0 : true)"""

FIT_JS = """([vw, vh, pad, maxScale]) => {
  const c = window.app.canvas, g = window.app.graph;
  let x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  const add = (a, b, w, h) => { x0 = Math.min(x0, a); y0 = Math.min(y0, b);
                                x1 = Math.max(x1, a + w); y1 = Math.max(y1, b + h); };
  for (const n of g._nodes) { const b = new Float32Array(4); n.getBounding(b, true); add(b[0], b[1], b[2], b[3]); }
  for (const gr of g._groups ?? g.groups ?? []) { const r = gr._bounding ?? gr.bounding; add(r[0], r[1], r[2], r[3]); }
  const scale = Math.min(maxScale, (vw - 2 * pad) / (x1 - x0), (vh - 2 * pad) / (y1 - y0));
  c.ds.scale = scale;
  c.ds.offset[0] = pad / scale - x0;
  c.ds.offset[1] = pad / scale - y0;
  c.setDirty(true, true);
  c.draw(true, true);
  return {bounds: [x0, y0, x1 - x0, y1 - y0], scale};
}"""


def overlaps(nodes: list) -> list:
    """Pairs of nodes whose drawn areas (body, title bar, badge) intersect."""
    out = []
    for i, a in enumerate(nodes):
        ax, ay, aw, ah = a["drawn"]
        for b in nodes[i + 1:]:
            bx, by, bw, bh = b["drawn"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append((a["title"], b["title"]))
    return out


def outside_groups(nodes: list, groups: list, title_h: float = 22 * 1.4) -> list:
    """Nodes not drawn inside a group, below its title bar."""
    out = []
    for n in nodes:
        x, y, w, h = n["drawn"]
        if not any(g[0] <= x and g[1] + title_h <= y and x + w <= g[0] + g[2] and y + h <= g[1] + g[3]
                   for g in groups):
            out.append(n["title"])
    return out


def too_small(nodes: list) -> list:
    """Nodes whose content needs more than their size (computeSize above node.size)."""
    return [(n["title"], [round(v, 1) for v in n["size"]], [round(v, 1) for v in n["min"]])
            for n in nodes if n["min"][1] > n["size"][1] + 0.5]


def inspect(page, args, name: str, data: dict, messages: list, suffix: str = "") -> dict:
    """Measure the loaded graph against the file, then screenshot it fitted and 1:1."""
    nodes = page.evaluate(MEASURE_JS)
    groups = page.evaluate("() => (app.graph._groups ?? app.graph.groups).map(g => "
                           "[...(g._bounding ?? g.bounding)])")
    dialogs = page.evaluate("() => [...document.querySelectorAll('.p-dialog')].map(d => "
                            "d.innerText.slice(0, 400))")
    stored = {n["id"]: n for n in data["nodes"]}
    rows = []
    for n in nodes:
        s = stored[n["id"]]
        changed = None
        if n["serialized"] is not None and n["serialized"] != s["widgets_values"]:
            changed = {"stored": s["widgets_values"], "frontend": n["serialized"]}
        rows.append({**n, "stored_size": s["size"], "stored_pos": s["pos"], "widgets_changed": changed,
                     "grown": [round(n["size"][0] - s["size"][0], 1), round(n["size"][1] - s["size"][1], 1)],
                     "min_over_stored": [round(n["min"][0] - s["size"][0], 1), round(n["min"][1] - s["size"][1], 1)]})
    fit = page.evaluate(FIT_JS, [args.width, args.height, 30, 1.0])
    page.wait_for_timeout(500)
    page.screenshot(path=os.path.join(args.out, f"{name}{suffix}.png"))
    # 1:1, the page as large as the graph
    w, h = int(min(fit["bounds"][2] + 120, 6000)), int(min(fit["bounds"][3] + 200, 3000))
    page.set_viewport_size({"width": w, "height": h})
    page.wait_for_timeout(300)
    page.evaluate(FIT_JS, [w, h, 40, 1.0])
    page.wait_for_timeout(500)
    page.screenshot(path=os.path.join(args.out, f"{name}{suffix}_1to1.png"))
    page.set_viewport_size({"width": args.width, "height": args.height})
    page.wait_for_timeout(300)
    entry = {"messages": list(messages), "dialogs": dialogs, "nodes": rows, "groups": groups,
             "overlaps": overlaps(rows), "outside_groups": outside_groups(rows, groups),
             "too_small": too_small(rows), "fit": fit}
    grown = [(r["title"], r["grown"]) for r in rows if r["grown"][0] > 0 or r["grown"][1] > 0]
    print(f"{name}{suffix}: {len(rows)} nodes, {len(messages)} messages, {len(entry['overlaps'])} overlaps, "
          f"outside groups {entry['outside_groups']}, grown {grown}, too small {entry['too_small']}", flush=True)
    return entry


def run_in_page(page, args, name: str, data: dict, messages: list) -> dict:
    """Queue the loaded graph from the page, wait for the history entry, measure again
    (previews arrive: the Blend mask, the Write Video player)."""
    page.evaluate("() => { window.__thsDone = null; (window.comfyAPI?.api?.api ?? window.app.api).addEventListener('execution_success', "
                  "e => window.__thsDone = 'success'); (window.comfyAPI?.api?.api ?? window.app.api).addEventListener('execution_error', "
                  "e => window.__thsDone = 'error: ' + JSON.stringify(e.detail).slice(0, 2000)); }")
    started = time.time()
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    page.wait_for_function("() => window.__thsDone !== null", timeout=args.run_timeout * 1000, polling=1000)
    status = page.evaluate("() => window.__thsDone")
    try:    # the previews load after the run: Write Video's player, Blend's and Expression Edit's image
        page.wait_for_function(PREVIEWS_JS, timeout=30_000, polling=500)
        previews = "all shown"
    except Exception:
        previews = "some previews missing after 30 s"
    page.wait_for_timeout(args.settle_ms)
    entry = inspect(page, args, name, data, messages, suffix="_after_run")
    entry.update(status=status, seconds=round(time.time() - started, 1), previews=previews)
    return entry


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    os.makedirs(args.out, exist_ok=True)
    base = tempfile.mkdtemp(prefix="ths_browser_")
    prepare(base)
    proc, url, log = start_server(args.comfy, args.python, base)
    report = {"url": url, "base": base, "startup": [], "workflows": {}}
    messages: list = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.on("console", lambda m: messages.append(
                {"kind": "console", "type": m.type, "text": m.text, "where": m.location.get("url", "")}))
            page.on("pageerror", lambda e: messages.append({"kind": "pageerror", "type": "error", "text": str(e),
                                                            "stack": getattr(e, "stack", "")}))
            page.on("requestfailed", lambda r: messages.append(
                {"kind": "requestfailed", "type": "error", "text": f"{r.url} {r.failure}"}))
            page.on("response", lambda r: r.status >= 400 and messages.append(
                {"kind": "http", "type": "error", "text": f"{r.status} {r.url}"}))
            page.goto(url, wait_until="networkidle", timeout=180_000)
            page.wait_for_function("() => window.app && window.app.graph && window.app.canvas", timeout=180_000)
            page.wait_for_timeout(3000)
            report["startup"] = list(messages)
            report["extensions"] = page.evaluate(
                "() => window.app.extensions.map(e => e.name).filter(n => n.includes('talking'))")
            report["registered"] = page.evaluate(
                "() => Object.keys(LiteGraph.registered_node_types).filter(t => t.startsWith('THS_')).length")
            for path in sorted(glob.glob(os.path.join(args.workflows, "*.json"))):
                name = os.path.splitext(os.path.basename(path))[0]
                if args.only and name not in args.only:
                    continue
                data = json.load(open(path))
                messages.clear()
                page.evaluate("""async ([d, name]) => { await window.app.loadGraphData(d, true, true, name,
                                 {showMissingNodesDialog: true, showMissingModelsDialog: true}); }""",
                              [data, name])
                page.wait_for_timeout(args.settle_ms)              # upload previews load, nodes resize
                entry = inspect(page, args, name, data, messages)
                if name in args.run or "all" in args.run:
                    messages.clear()
                    entry["run"] = run_in_page(page, args, name, data, messages)
                report["workflows"][name] = entry
            browser.close()
    finally:
        from tests.test_real_host import stop_comfy

        stop_comfy(proc)
        log.seek(0)
        report["server_log_tail"] = log.read()[-4000:]
        if not args.keep_base:
            import shutil
            shutil.rmtree(base, ignore_errors=True)
    with open(os.path.join(args.out, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--comfy", default=os.environ.get("COMFYUI_DIR", "/work/comfyui"))
    ap.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default="/tmp/shots")
    ap.add_argument("--width", type=int, default=2400)
    ap.add_argument("--height", type=int, default=1400)
    ap.add_argument("--settle-ms", type=int, default=3000)
    ap.add_argument("--keep-base", action="store_true")
    ap.add_argument("--run", default="", help="comma-separated workflow names (or 'all') to also queue and re-measure")
    ap.add_argument("--run-timeout", type=int, default=900)
    ap.add_argument("--workflows", default=os.path.join(ROOT, "example_workflows"),
                    help="folder of UI-format workflows to open (default: the pack's examples)")
    ap.add_argument("--only", default="", help="comma-separated workflow names (default: all)")
    args = ap.parse_args()
    args.run = set(filter(None, args.run.split(",")))
    args.only = set(filter(None, args.only.split(",")))
    run(args)


if __name__ == "__main__":
    main()
