"""Load Source -> Write Video through the node classes, as the host would call them."""
import os
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import torch

from talking_head.nodes import io_nodes
from talking_head.nodes.convert import numpy_to_audio
from talking_head.pipelines.core import media
from talking_head.pipelines.core.errors import MediaError
from tests.paths import FIXTURES, needs_shared


@pytest.fixture(autouse=True)
def folders(monkeypatch, tmp_path):
    monkeypatch.setenv("TALKING_HEAD_STANDALONE", "1")
    monkeypatch.setenv("TALKING_HEAD_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("TALKING_HEAD_INPUT", str(tmp_path / "input"))
    return tmp_path


def _write(frames, fps, audio=None, **kw):
    out = io_nodes.WriteVideo().write(frames, fps, "test/clip", audio=audio, preset="ultrafast", **kw)
    return out


@needs_shared
def test_image_source_looped_over_speech(folders):
    os.makedirs(folders / "input" / "people")
    shutil.copy(os.path.join(FIXTURES, "astronaut.png"), folders / "input" / "people" / "astronaut.png")
    frames, fps, audio, info = io_nodes.LoadSource().load("people/astronaut.png")
    assert frames.shape == (1, 512, 512, 3) and audio is None and "image" in info
    wav = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))
    speech = numpy_to_audio(wav, 16000)
    out = _write(frames, fps, speech)
    path = out["result"][0]
    assert out["ui"]["images"][0] == {"filename": os.path.basename(path), "subfolder": "test", "type": "output"}
    assert list(out["ui"]["animated"]) == [True]
    assert path.startswith(str(folders / "output" / "test"))
    info = media.probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert abs(info.duration - len(wav) / 16000) <= 0.040


def test_ntsc_source_video_with_stereo_44k_audio(folders):
    os.makedirs(folders / "input")
    src = str(folders / "input" / "ntsc.mp4")
    subprocess.run([media.ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=128x96:rate=30000/1001", "-f", "lavfi", "-i",
                    "sine=frequency=300:sample_rate=44100", "-t", "3", "-ac", "2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", src], check=True)
    frames, fps, audio, info = io_nodes.LoadSource().load("ntsc.mp4")
    assert abs(fps - 30000 / 1001) < 1e-9 and frames.shape[1:] == (96, 128, 3)
    assert audio["waveform"].shape[:2] == (1, 2) and audio["sample_rate"] == 44100
    path = _write(frames, fps, audio)["result"][0]
    info2 = media.probe(path)
    assert info2.fps == Fraction(30000, 1001) and info2.audio_codec == "aac"
    assert abs(info2.duration - audio["waveform"].shape[-1] / 44100) <= 0.040


def test_audio_of_any_rate_and_channels(folders):
    frames = torch.rand(3, 40, 40, 3)
    wav = np.random.default_rng(0).uniform(-0.3, 0.3, size=(5, 37000)).astype(np.float32)  # 5 ch, 37 kHz
    path = _write(frames, 10.0, numpy_to_audio(wav, 37000))["result"][0]
    info = media.probe(path)
    assert info.audio_codec == "aac" and abs(info.duration - 1.0) <= 0.1


def test_length_modes_pick_frames():
    assert list(io_nodes.frame_order(3, 7, "match audio (loop frames)")) == [0, 1, 2, 0, 1, 2, 0]
    assert list(io_nodes.frame_order(3, 5, "match audio (hold last frame)")) == [0, 1, 2, 2, 2]
    assert list(io_nodes.frame_order(3, 7, "match audio (ping-pong)")) == [0, 1, 2, 2, 1, 0, 0]


def test_match_frames_cuts_audio(folders):
    frames = torch.rand(10, 32, 32, 3)
    wav = np.zeros((1, 16000 * 3), np.float32)
    path = _write(frames, 10.0, numpy_to_audio(wav, 16000), length="match frames (cut or pad audio)")["result"][0]
    assert abs(media.probe(path).duration - 1.0) <= 0.07


def test_successive_writes_do_not_overwrite(folders):
    frames = torch.rand(2, 16, 16, 3)
    a = _write(frames, 5.0)["result"][0]
    b = _write(frames, 5.0)["result"][0]
    assert a != b and os.path.isfile(a) and os.path.isfile(b)


def test_bad_inputs_give_clear_errors(folders):
    from talking_head.pipelines.core.errors import MediaError, ShapeError

    with pytest.raises(ShapeError, match="IMAGE batch"):
        _write(torch.rand(16, 16, 3), 5.0)
    with pytest.raises(MediaError, match="empty"):
        _write(torch.rand(2, 16, 16, 3), 5.0, {"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000})
    assert io_nodes.LoadSource.VALIDATE_INPUTS("missing.png").startswith("File not found: 'missing.png'")


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "../outside.png", "a/../../b.png",
                                  "/etc/passwd", "C:\\Windows\\win.ini", "x.png [nowhere]/../../y"])
def test_names_outside_the_input_folder_are_refused(folders, monkeypatch, name):
    (folders / "outside.png").write_bytes(b"not really a png")
    message = io_nodes.LoadSource.VALIDATE_INPUTS(name)
    assert message is not True and ("outside" in message or "absolute path" in message
                                    or "not found" in message), message
    assert str(folders) not in message                       # no server path in the answer
    with pytest.raises(MediaError) as err:
        io_nodes.LoadSource().load(name)
    assert str(folders) not in str(err.value)


def test_absolute_paths_are_an_operator_opt_in(folders, monkeypatch):
    image = folders / "elsewhere.png"
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 100, 50)).save(image)
    assert "TALKING_HEAD_ALLOW_ABSOLUTE_PATHS" in io_nodes.LoadSource.VALIDATE_INPUTS(str(image))
    monkeypatch.setenv("TALKING_HEAD_ALLOW_ABSOLUTE_PATHS", "1")
    assert io_nodes.LoadSource.VALIDATE_INPUTS(str(image)) is True
    frames, *_ = io_nodes.LoadSource().load(str(image))
    assert frames.shape == (1, 48, 64, 3)
    # annotated names resolve in their folder, as with core nodes
    os.makedirs(folders / "output")
    Image.new("RGB", (8, 8)).save(folders / "output" / "last.png")
    monkeypatch.delenv("TALKING_HEAD_ALLOW_ABSOLUTE_PATHS")
    assert io_nodes.LoadSource.VALIDATE_INPUTS("last.png [output]") is True


def test_core_video_in_and_out_round_trip(folders):
    """Write Video's VIDEO carries the frames, fps and audio of the file it wrote; Load
    Source given that VIDEO returns the same as given the file (and as given the components
    of a VIDEO that is not a file)."""
    import types
    from fractions import Fraction

    from talking_head.nodes import host
    from talking_head.pipelines.core import images

    frames = torch.from_numpy(images.to_float(
        (np.random.default_rng(1).random((12, 48, 64, 3)) * 255).astype(np.uint8)))
    t = np.arange(int(0.4 * 44100)) / 44100
    wav = numpy_to_audio(np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)]).astype(np.float32) * 0.3,
                         44100)
    out = io_nodes.WriteVideo().write(frames, 30000 / 1001, "vid/clip", audio=wav, preset="ultrafast", crf=0)
    path, video = out["result"]
    parts = video.get_components()
    decoded = media.read_video(path)
    assert Fraction(parts.frame_rate) == Fraction(30000, 1001) == decoded.fps
    assert torch.allclose(torch.as_tensor(parts.images).float(), torch.from_numpy(images.to_float(decoded.frames)),
                          atol=1 / 255)
    assert parts.audio["sample_rate"] == 44100 and parts.audio["waveform"].shape[1] == 2

    os.makedirs(folders / "input", exist_ok=True)
    shutil.copy(path, folders / "input" / "clip.mp4")
    by_file = io_nodes.LoadSource().load("clip.mp4")
    by_video = io_nodes.LoadSource().load("", video=video)
    components = types.SimpleNamespace(get_components=lambda: parts)     # a VIDEO that is not a file
    by_parts = io_nodes.LoadSource().load("", video=components)
    for got in (by_video, by_parts):
        assert torch.allclose(got[0], by_file[0], atol=1 / 255 + 1e-6)
        assert abs(got[1] - by_file[1]) < 1e-9
        assert got[2]["sample_rate"] == by_file[2]["sample_rate"]
        assert torch.allclose(got[2]["waveform"], by_file[2]["waveform"], atol=1e-4)
    assert io_nodes.LoadSource.VALIDATE_INPUTS("") is True
    with pytest.raises(MediaError, match="No file chosen"):
        io_nodes.LoadSource().load("")
    assert isinstance(host.video_from_file(path), host.FileVideo)   # standalone: the stand-in
