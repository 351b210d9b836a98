"""Optional: drive a real ComfyUI with this pack (skipped unless COMFYUI_DIR is set).

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/python pytest tests/test_real_host.py

The test links the pack into ``custom_nodes``, starts ComfyUI on 127.0.0.1 with ``--cpu``
on a free port, checks that ``/object_info`` lists every node of the pack, queues every
API-format workflow in ``example_workflows/`` (``*.api.json``), waits for ``/history``,
checks that the outputs exist and stops the server by its PID. The workflows' inputs
(upload widgets) are made in ComfyUI's input folder from ../shared/fixtures.
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
import urllib.request

import pytest

import talking_head
from tests.paths import FIXTURES, ROOT

COMFY = os.environ.get("COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFY, reason="set COMFYUI_DIR to a ComfyUI checkout to run the real-host test")


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


def _prepare_inputs(folder: str) -> None:
    """The example workflows' upload-widget files, made from ../shared's fixtures."""
    from tests.test_end_to_end import synthetic_face_video

    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, "astronaut.png"), os.path.join(folder, "portrait.png"))
    shutil.copy(os.path.join(FIXTURES, "speech_16k.wav"), os.path.join(folder, "speech.wav"))
    for name in ("driving.mp4", "portrait_video.mp4"):
        if not os.path.isfile(os.path.join(folder, name)):
            synthetic_face_video(os.path.join(folder, name), 2.0, 25, size=384)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    link = os.path.join(COMFY, "custom_nodes", "talking_head_studio")
    if not os.path.exists(link):
        os.symlink(ROOT, link)
    port = _free_port()
    log = open(tmp_path_factory.mktemp("comfy") / "server.log", "w+")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    proc = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port)],
                            cwd=COMFY, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            _get(base + "/system_stats", timeout=2)
            break
        except Exception:
            time.sleep(1)
    else:
        proc.kill()
    if proc.poll() is not None:
        log.seek(0)
        pytest.fail("ComfyUI did not start:\n" + log.read()[-3000:])
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.seek(0)
    text = log.read()
    assert "IMPORT FAILED" not in text or "talking_head_studio" not in text


def test_every_node_is_listed(server):
    info = _get(server + "/object_info")
    missing = set(talking_head.NODE_CLASS_MAPPINGS) - set(info)
    assert not missing, f"ComfyUI does not list: {sorted(missing)}"


@pytest.mark.parametrize("workflow", sorted(glob.glob(os.path.join(ROOT, "example_workflows", "*.api.json"))))
def test_example_workflow_runs(server, workflow):
    prompt = json.load(open(workflow))
    _prepare_inputs(os.path.join(COMFY, "input"))
    prompt_id = _post(server + "/prompt", {"prompt": prompt})["prompt_id"]
    deadline = time.time() + 900
    while time.time() < deadline:
        hist = _get(server + f"/history/{prompt_id}")
        if prompt_id in hist:
            entry = hist[prompt_id]
            assert entry["status"]["status_str"] == "success", entry["status"]
            files = [f for out in entry["outputs"].values() for f in out.get("images", [])]
            assert files, "the workflow produced no output file"
            for f in files:
                assert os.path.isfile(os.path.join(COMFY, f["type"], f["subfolder"], f["filename"]))
            return
        time.sleep(2)
    pytest.fail("the workflow did not finish in 15 minutes")
