"""Bad inputs, interruption and debris, as a demanding user (or a hostile API client) meets
them: every node refuses bad values with a TalkingHeadError that says what to do, heavy
steps stop within one layer / diffusion step of a stop request, and no render leaves a
file behind when it fails, is interrupted or is killed."""
import glob
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from talking_head.nodes import io_nodes
from talking_head.pipelines.core import media
from talking_head.pipelines.core.errors import TalkingHeadError
from talking_head.pipelines.core.runtime import RunContext
from tests.paths import FIXTURES, ROOT, needs_shared

ACTIONS = ("connect", "choose", "use", "put", "set", "upload", "install", "give", "re-export",
           "pick", "draw", "type", "check", "convert", "add")


class Stop(Exception):
    pass


def _stop_after(n: int):
    """An interrupt check that raises on its (n+1)-th call; counts the calls."""
    calls = []

    def check():
        calls.append(1)
        if len(calls) > n:
            raise Stop

    return check, calls


def assert_actionable(exc: BaseException) -> None:
    assert isinstance(exc, TalkingHeadError), f"{type(exc).__name__}: {exc}"
    text = str(exc).lower()
    assert len(text) > 20 and any(w in text for w in ACTIONS), text


# ---------------------------------------------------------------------------------------
# interruption granularity (tiny models: the number of checks per unit of work)


def test_a_long_forward_pass_stops_within_one_layer():
    from talking_head.pipelines.liveportrait import loader as L
    from talking_head.pipelines.liveportrait import render as R
    from talking_head.pipelines.core.types import ModelBundle

    nets = L.build_networks(L.TINY_RENDERER, init=True)
    bundle = ModelBundle("liveportrait", nets, torch.device("cpu"), torch.float32)
    layers = sum(1 for _ in nets["decoder"].modules())
    check, calls = _stop_after(3)
    with pytest.raises(Stop):
        R.decode(bundle, torch.rand(2, 16, 64, 64), RunContext(interrupt=check), batch_size=2)
    # the stop came inside the first batch's forward, after a few layers, not after it
    assert len(calls) == 4 and layers > 10


def test_ditto_sampling_stops_between_diffusion_steps():
    from talking_head.pipelines.ditto import DittoConfig, DittoSampling, generate_motion
    from talking_head.pipelines.ditto.lmdm import TINY, MotionDecoder
    from talking_head.pipelines.core.types import AudioFeatures, ModelBundle, MotionInfo

    bundle = ModelBundle("ditto", {"lmdm": MotionDecoder(TINY).eval(), "cfg": DittoConfig(),
                                   "hubert": None}, torch.device("cpu"), torch.float32)
    g = torch.Generator().manual_seed(0)
    info = MotionInfo(pitch=torch.randn(1, 66, generator=g), yaw=torch.randn(1, 66, generator=g),
                      roll=torch.randn(1, 66, generator=g), t=torch.zeros(1, 3),
                      exp=torch.zeros(1, 21, 3), scale=torch.ones(1, 1), kp=torch.zeros(1, 21, 3))
    feats = AudioFeatures(torch.zeros(120, 1024), "hubert", 25.0, 4.8)
    check, calls = _stop_after(7)
    with pytest.raises(Stop):
        generate_motion(bundle, feats, (info, np.full((1, 2), .3), np.zeros((1, 6))),
                        DittoSampling(steps=20), RunContext(interrupt=check))
    assert len(calls) == 8      # one check per step: the 8th step of the first window


# ---------------------------------------------------------------------------------------
# debris


def _frames(n=4, size=32):
    return (np.random.default_rng(0).random((n, size, size, 3)) * 255).astype(np.uint8)


def test_a_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield _frames(2)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        media.write_video(str(tmp_path / "out.mp4"), broken(), 25,
                          media.AudioTrack.of(np.zeros(16000, np.float32), 16000))
    assert os.listdir(tmp_path) == []


def test_an_interrupted_write_leaves_nothing(tmp_path):
    check, _ = _stop_after(2)
    with pytest.raises(Stop):
        media.write_video(str(tmp_path / "out.mp4"), iter([_frames(8)]), 25, None,
                          ctx=RunContext(interrupt=check))
    assert os.listdir(tmp_path) == []


def test_stale_partials_of_a_killed_render_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{media.PARTIAL_PREFIX}{dead.pid}-0123456789ab.mp4"
    mine = tmp_path / f"{media.PARTIAL_PREFIX}{os.getpid()}-0123456789ab.mp4"
    other = tmp_path / "keep.partial.mp4"
    for p in (stale, mine, other):
        p.write_bytes(b"x")
    media.write_video(str(tmp_path / "out.mp4"), iter([_frames(2)]), 25)
    assert not stale.exists() and mine.exists() and other.exists()
    assert (tmp_path / "out.mp4").exists()


@needs_shared
def test_sigterm_during_a_cli_render_leaves_no_file(tmp_path):
    """A killed render: nothing in the output folder, nothing in the temp folder."""
    from tests import fake_models
    from tests.test_end_to_end import synthetic_face_video

    models = fake_models.write_all(str(tmp_path / "models"), ("aux", "liveportrait"))
    driving = synthetic_face_video(str(tmp_path / "driving.mp4"), 6.0, 25, size=256)
    out_dir, tmp_dir = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp_dir.mkdir()
    env = dict(os.environ, TALKING_HEAD_MODELS=models, TMPDIR=str(tmp_dir))
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tiny_cli.py"), "render",
                             "liveportrait", "--source", os.path.join(FIXTURES, "astronaut.png"),
                             "--driving", driving, "--out", str(out_dir / "lp.mp4"), "--preset", "ultrafast"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not glob.glob(str(out_dir / ".partial*")):
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert glob.glob(str(out_dir / ".partial*")), "the render never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert os.listdir(out_dir) == [] and os.listdir(tmp_dir) == []


# ---------------------------------------------------------------------------------------
# the bad-input corpus of the edge nodes


@pytest.fixture
def folders(monkeypatch, tmp_path):
    monkeypatch.setenv("TALKING_HEAD_STANDALONE", "1")
    monkeypatch.setenv("TALKING_HEAD_INPUT", str(tmp_path / "input"))
    monkeypatch.setenv("TALKING_HEAD_OUTPUT", str(tmp_path / "output"))
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "notes.mp4").write_text("this is text, not a video")
    (tmp_path / "input" / "empty.png").write_bytes(b"")
    (tmp_path / "input" / "folder.png").mkdir()
    from PIL import Image

    Image.new("RGB", (1, 1)).save(tmp_path / "input" / "dot.png")
    return tmp_path


LOAD_SOURCE = ["", "missing.png", "../../../../etc/passwd", "/etc/passwd", "notes.mp4", "empty.png",
               "dot.png", "folder.png"]


@pytest.mark.parametrize("name", LOAD_SOURCE)
def test_load_source_refuses_bad_files(folders, name):
    answer = io_nodes.LoadSource.VALIDATE_INPUTS(name)
    if answer is True:          # exists and is inside the folder: the load itself refuses it
        with pytest.raises(Exception) as err:
            io_nodes.LoadSource().load(name)
        assert_actionable(err.value)
    else:
        assert isinstance(answer, str) and str(folders) not in answer
    with pytest.raises(Exception) as err:
        io_nodes.LoadSource().load(name)
    assert_actionable(err.value)
    assert str(folders) not in str(err.value)


def _audio(waveform, rate=16000):
    return {"waveform": waveform, "sample_rate": rate}


WRITE_VIDEO = {
    "fps NaN": dict(fps=float("nan")),
    "fps 0": dict(fps=0.0),
    "fps inf": dict(fps=float("inf")),
    "frames 3-D": dict(frames=torch.rand(8, 8, 3)),
    "frames empty": dict(frames=torch.rand(0, 8, 8, 3)),
    "frames 2 channels": dict(frames=torch.rand(2, 8, 8, 2)),
    "prefix outside": dict(filename_prefix="../../escape"),
    "audio empty": dict(audio=_audio(torch.zeros(1, 1, 0))),
    "audio NaN": dict(audio=_audio(torch.full((1, 1, 800), float("nan")))),
    "audio rate 0": dict(audio=_audio(torch.zeros(1, 1, 800), 0)),
    "audio rate NaN": dict(audio=_audio(torch.zeros(1, 1, 800), float("nan"))),
    "audio not a dict": dict(audio=[0.0, 0.1]),
    "audio 4-D": dict(audio=_audio(torch.zeros(1, 1, 1, 800))),
}


@pytest.mark.parametrize("case", list(WRITE_VIDEO))
def test_write_video_refuses_bad_values(folders, case):
    kwargs = dict(frames=torch.rand(2, 16, 16, 3), fps=25.0, filename_prefix="clip", preset="ultrafast")
    kwargs.update(WRITE_VIDEO[case])
    with pytest.raises(Exception) as err:
        io_nodes.WriteVideo().write(**kwargs)
    assert_actionable(err.value)
    leftovers = [f for f in glob.glob(str(folders / "output" / "**" / "*"), recursive=True)
                 if os.path.isfile(f)]
    assert leftovers == []


@pytest.mark.parametrize("rate", [7919, 11025, 22254, 44056])
def test_write_video_takes_odd_sample_rates(folders, rate):
    t = np.arange(rate // 2) / rate
    wav = torch.from_numpy(np.sin(2 * math.pi * 440 * t).astype(np.float32))[None, None]
    path = io_nodes.WriteVideo().write(torch.rand(5, 16, 16, 3), 10.0, "clip", preset="ultrafast",
                                       audio=_audio(wav, rate))["result"][0]
    info = media.probe(path)
    assert info.audio_codec == "aac" and abs(info.duration - 0.5) < 0.07


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    from tests import fake_models

    return fake_models.write_all(str(tmp_path_factory.mktemp("models")), ("aux", "ditto", "musetalk"))


@pytest.fixture
def hosted(fake_root, folders, monkeypatch):
    from tests import fake_models

    fake_models.use(monkeypatch, fake_root)
    return folders


NOISE = torch.rand(1, 96, 96, 3, generator=torch.Generator().manual_seed(3))
FACE_REGISTER = {
    "frames 3-D": dict(frames=torch.rand(8, 8, 3)),
    "frames empty": dict(frames=torch.rand(0, 8, 8, 3)),
    "fps NaN": dict(fps=float("nan")),
    "fps negative": dict(fps=-25.0),
    "no face, no box": dict(frames=NOISE),
    "box of 3 numbers": dict(manual_box="1, 2, 3"),
    "box of words": dict(manual_box="a, b, c, d"),
    "box with NaN": dict(manual_box="nan, 0, 10, 10"),
    "box outside the frame": dict(frames=NOISE, manual_box="500, 500, 40, 40"),
    "eyes of 3 numbers": dict(manual_eyes="1, 2, 3"),
    "insightface without its files": dict(detector="insightface"),
    "unknown detector": dict(detector="dlib"),
}


@needs_shared
@pytest.mark.parametrize("case", list(FACE_REGISTER))
def test_face_register_refuses_bad_values(hosted, case):
    from talking_head.nodes.face_nodes import FaceRegister

    kwargs = dict(frames=torch.rand(1, 64, 64, 3), fps=25.0)
    kwargs.update(FACE_REGISTER[case])
    with pytest.raises(Exception) as err:
        FaceRegister().register(**kwargs)
    assert_actionable(err.value)


AUDIO = {
    "not a dict": [0.0, 0.1],
    "empty": _audio(torch.zeros(1, 1, 0)),
    "NaN": _audio(torch.full((1, 1, 1600), float("nan"))),
    "rate 0": _audio(torch.zeros(1, 1, 1600), 0),
    "rate NaN": _audio(torch.zeros(1, 1, 1600), float("nan")),
    "4-D": _audio(torch.zeros(1, 1, 1, 1600)),
    "a string": _audio("speech.wav"),
}


@needs_shared
@pytest.mark.parametrize("case", list(AUDIO))
def test_audio_feature_nodes_refuse_bad_audio(hosted, case):
    from talking_head.nodes.ditto_nodes import AudioToHubert, LoadDittoModels
    from talking_head.nodes.musetalk_nodes import AudioToWhisper, LoadMuseTalkModels

    ditto, _ = LoadDittoModels().load(auto_download=False)
    (musetalk,) = LoadMuseTalkModels().load(auto_download=False)
    for call in (lambda a: AudioToHubert().encode(a, ditto),
                 lambda a: AudioToWhisper().encode(a, musetalk, 25.0)):
        with pytest.raises(Exception) as err:
            call(AUDIO[case])
        assert_actionable(err.value)
    with pytest.raises(Exception) as err:
        AudioToWhisper().encode(_audio(torch.zeros(1, 1, 1600)), musetalk, float("nan"))
    assert_actionable(err.value)


def test_overlapped_render_loop_keeps_order_and_stops_cleanly():
    """The two-stage loop (finish of chunk k in a thread while chunk k+1 is made) yields
    the chunks in order, and a stop request surfaces between chunks with no chunk lost."""
    import threading

    from talking_head.pipelines.core.render_loop import stream
    from talking_head.pipelines.core.runtime import InterruptedRender, RunContext

    seen_threads = set()

    def finish(made, frames):
        seen_threads.add(threading.current_thread().name)
        return [x * 10 for x in made]

    out = list(stream(10, lambda s: list(range(s.start, s.stop)), RunContext(), 3, finish))
    assert [v for c in out for v in c] == [10 * i for i in range(10)]
    assert all(name.startswith("ths-finish") for name in seen_threads)

    flag = {"stop": False}

    def interrupt():
        if flag["stop"]:
            raise InterruptedRender("stop")

    got = []
    with pytest.raises(InterruptedRender):
        for c in stream(12, lambda s: list(range(s.start, s.stop)), RunContext(interrupt=interrupt), 3,
                        finish):
            got.append(c)
            flag["stop"] = len(got) == 2
    assert [v for c in got for v in c] == [10 * i for i in range(6)]
