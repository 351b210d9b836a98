"""The web extension loads as an ES module against a stand-in ComfyUI ``app`` and its hooks
behave: Blend's mask preview is marked stale when a blend widget changes and fresh again
after a run; Write Video's title shows the written file. Needs node (skipped without)."""
import json
import os
import shutil
import subprocess

import pytest

from tests.paths import ROOT

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

APP_STUB = "export const app = { extensions: [], registerExtension(e) { this.extensions.push(e); } };\n"
DRIVER = r"""
import { app } from "../../scripts/app.js";
await import("./talking_head.js");
const ext = app.extensions[0];
function makeType(name, widgets) {
  function T() { this.widgets = widgets.map((n) => ({ name: n, callback: null })); this.size = [300, 200]; }
  T.prototype.setDirtyCanvas = function () {};
  ext.beforeRegisterNodeDef(T, { name, display_name: name });
  return T;
}
const Blend = makeType("THS_Blend", ["mode", "region", "alpha", "feather", "color_match", "crop_edge"]);
const b = new Blend();
b.onNodeCreated();
const before = !!b.__thsStale;
b.widgets.find((w) => w.name === "mode").callback("blend");
const afterChange = !!b.__thsStale;
b.onExecuted({ images: [] });
const afterRun = !!b.__thsStale;
const Write = makeType("THS_WriteVideo", []);
const w = new Write();
globalThis.requestAnimationFrame = (f) => f();
globalThis.document = { querySelectorAll: () => [] };
globalThis.HTMLVideoElement = class {};
w.onExecuted({ images: [{ filename: "TalkingHead_00001.mp4" }] });
console.log(JSON.stringify({ name: ext.name, before, afterChange, afterRun, title: w.title }));
"""


def test_extension_hooks(tmp_path):
    ext_dir = tmp_path / "extensions" / "pack"
    ext_dir.mkdir(parents=True)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "app.js").write_text(APP_STUB)
    shutil.copy(os.path.join(ROOT, "web", "js", "talking_head.js"), ext_dir / "talking_head.js")
    (ext_dir / "driver.mjs").write_text(DRIVER)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    proc = subprocess.run([NODE, str(ext_dir / "driver.mjs")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["name"] == "talking_head_studio.ui"
    assert (out["before"], out["afterChange"], out["afterRun"]) == (False, True, False)
    assert out["title"].endswith("TalkingHead_00001.mp4")
