"""Drive a real ComfyUI with this pack (skipped unless COMFYUI_DIR is set).

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/python-with-its-requirements \\
        pytest tests/test_real_host.py

COMFYUI_DIR is only read: ComfyUI starts with ``--base-directory`` on a fresh folder that
this test fills itself: ``custom_nodes/`` with a link to this checkout, ``models/`` with
fake tiny checkpoints in the released layouts, ``input/`` with the example workflows'
files. The host loads the pack's tiny network sizes through a ``sitecustomize`` on its
PYTHONPATH (test code: the pack itself has no such switch). The server listens on a free
loopback port and is stopped by its PID. Checks: every node is listed, the web extension
is served once, every example API workflow runs to H.264/AAC, core Load Video -> the pack
-> core Save Video works, a wrong combo value is refused at validation (HTTP 400).
"""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import talking_head
from tests.paths import FIXTURES, ROOT, needs_shared

COMFY = os.environ.get("COMFYUI_DIR")
pytestmark = [pytest.mark.skipif(not COMFY, reason="set COMFYUI_DIR to a ComfyUI checkout (and "
                                 "COMFYUI_PYTHON to its Python) to run the real-host test"),
              needs_shared]
API_WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "example_workflows", "api", "*.json")))
TIMES: dict = {}

# Runs in the host's Python before ComfyUI: once the pack's model cache module is imported
# (under whatever name ComfyUI gives the pack), its network sizes become the tiny ones.
SITECUSTOMIZE = '''
import importlib.abc, importlib.machinery, sys

class _TinySizes(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if not name.endswith(".pipelines.app.models"):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                run = spec.loader.exec_module
                def exec_module(module, run=run, pkg=name[: -len(".app.models")]):
                    run(module)
                    mods = sys.modules
                    import importlib
                    tiny = dict(liveportrait=importlib.import_module(pkg + ".liveportrait.loader").TINY_RENDERER,
                                ditto=importlib.import_module(pkg + ".ditto.lmdm").TINY,
                                musetalk=importlib.import_module(pkg + ".musetalk.models").TINY_CONFIGS)
                    module.SIZES.update(tiny)
                spec.loader.exec_module = exec_module
                return spec
        return None

sys.meta_path.insert(0, _TinySizes())
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url: str, payload: dict):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _prepare(base: str) -> None:
    """The base folder: the pack, fake tiny models, the workflows' input files."""
    from talking_head.pipelines.core import media
    from tests import fake_models
    from tests.test_end_to_end import synthetic_face_video

    os.makedirs(os.path.join(base, "custom_nodes"))
    os.symlink(ROOT, os.path.join(base, "custom_nodes", "talking-head-studio"))
    fake_models.write_all(os.path.join(base, "models"))
    inputs = os.path.join(base, "input")
    os.makedirs(inputs)
    shutil.copy(os.path.join(FIXTURES, "astronaut.png"), os.path.join(inputs, "portrait.png"))
    speech = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))[:32000]     # 2 s
    media.write_audio(os.path.join(inputs, "speech.wav"), speech, 16000)
    synthetic_face_video(os.path.join(inputs, "driving.mp4"), 2.0, 25, size=320)
    synthetic_face_video(os.path.join(inputs, "portrait_video.mp4"), 1.0, 25, size=320)
    hooks = os.path.join(base, "hooks")
    os.makedirs(hooks)
    with open(os.path.join(hooks, "sitecustomize.py"), "w") as fh:
        fh.write(SITECUSTOMIZE)


def start_comfy(comfy: str, python: str, base: str, timeout: float = 240):
    """Start ComfyUI on a free loopback port over ``base``, in its own process group;
    (process, url, log file). None for the process when it did not come up (the log says why)."""
    port = _free_port()
    log = open(os.path.join(base, "server.log"), "w+")
    env = dict(os.environ, PYTHONPATH=os.path.join(base, "hooks"))
    proc = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                             "--base-directory", base, "--disable-auto-launch"],
                            cwd=comfy, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            _get(url + "/system_stats", timeout=2)
            return proc, url, log
        except Exception:
            time.sleep(1)
    stop_comfy(proc)
    return None, url, log


def stop_comfy(proc) -> None:
    """Stop the server's whole process group (SIGTERM, then SIGKILL after 20 s)."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("comfy_base"))
    _prepare(base)
    proc, url, log = start_comfy(COMFY, os.environ.get("COMFYUI_PYTHON", sys.executable), base)
    if proc is None:
        log.seek(0)
        pytest.fail("ComfyUI did not start:\n" + log.read()[-3000:])
    yield url, base
    stop_comfy(proc)
    log.seek(0)
    text = log.read()
    assert "IMPORT FAILED" not in text, text[-3000:]
    print("\nreal host wall time per workflow:", {k: f"{v:.1f} s" for k, v in TIMES.items()})


def _run(url: str, prompt: dict, timeout: float = 900) -> dict:
    prompt_id = _post(url + "/prompt", {"prompt": prompt})["prompt_id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        hist = _get(url + f"/history/{prompt_id}")
        if prompt_id in hist:
            entry = hist[prompt_id]
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
            return entry
        time.sleep(1)
    pytest.fail("the prompt did not finish in time")


def _outputs(entry: dict, base: str) -> list:
    files = [f for out in entry["outputs"].values() for key in ("images", "videos")
             for f in out.get(key, [])]
    return [os.path.join(base, f["type"], f["subfolder"], f["filename"]) for f in files]


def test_every_node_is_listed_and_the_extension_served_once(server):
    url, _ = server
    info = _get(url + "/object_info")
    missing = set(talking_head.NODE_CLASS_MAPPINGS) - set(info)
    assert not missing, f"ComfyUI does not list: {sorted(missing)}"
    ours = [e for e in _get(url + "/extensions") if e.endswith("/talking_head.js")]
    assert len(ours) == 1, ours


@pytest.mark.parametrize("workflow", API_WORKFLOWS, ids=os.path.basename)
def test_example_workflow_renders_h264_aac(server, workflow):
    from talking_head.pipelines.core import media

    url, base = server
    prompt = json.load(open(workflow))
    start = time.time()
    entry = _run(url, prompt)
    TIMES[os.path.basename(workflow)] = time.time() - start
    videos = [p for p in _outputs(entry, base) if p.endswith(".mp4")]
    assert videos, "the workflow wrote no video"
    for path in videos:
        info = media.probe(path)
        assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")


def test_core_load_video_through_the_pack_to_core_save_video(server):
    from talking_head.pipelines.core import media

    url, base = server
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "portrait_video.mp4"}},
        "2": {"class_type": "THS_LoadSource", "inputs": {"source": "", "max_frames": 0, "every_nth": 1,
                                                         "video": ["1", 0]}},
        "3": {"class_type": "THS_WriteVideo", "inputs": {"frames": ["2", 0], "fps": ["2", 1], "audio": ["2", 2],
                                                         "filename_prefix": "host/pass", "length":
                                                         "match frames (cut or pad audio)", "crf": 19,
                                                         "preset": "ultrafast"}},
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 1], "filename_prefix": "host/saved",
                                                    "format": "auto", "codec": "auto"}},
    }
    entry = _run(url, prompt)
    saved = [p for p in _outputs(entry, base) if "saved" in p]
    assert saved, entry["outputs"]
    a, b = media.probe(saved[0]), media.probe(os.path.join(base, "input", "portrait_video.mp4"))
    assert a.has_video and a.has_audio and abs(a.duration - b.duration) < 0.1


def test_a_wrong_combo_value_is_refused_at_validation(server):
    url, _ = server
    prompt = json.load(open(next(p for p in API_WORKFLOWS if "liveportrait" in p)))
    blend = next(k for k, v in prompt.items() if v["class_type"] == "THS_Blend")
    prompt[blend]["inputs"]["mode"] = "sideways"
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(url + "/prompt", {"prompt": prompt})
    assert err.value.code == 400
    body = json.loads(err.value.read())
    assert "sideways" in json.dumps(body["node_errors"])
