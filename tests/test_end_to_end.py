"""Portrait + driving video or speech -> MP4 through the command line, with fake tiny
checkpoints in the released layouts (real registry lookups, loaders and file formats)."""
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from talking_head.pipelines import media
from tests import fake_models
from tests.paths import FIXTURES, ROOT, needs_shared

pytestmark = needs_shared
PHOTO = os.path.join(FIXTURES, "astronaut.png")
SPEECH = os.path.join(FIXTURES, "speech_16k.wav")


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    return fake_models.write_all(str(tmp_path_factory.mktemp("models")))


def synthetic_face_video(path: str, seconds: float, fps, size: int = 256, audio: bool = True) -> str:
    """The fixture photo, moved and turned a little per frame, with a tone as its sound."""
    import cv2

    img = cv2.resize(media.read_image(PHOTO), (size, size), interpolation=cv2.INTER_AREA)
    n = int(round(seconds * float(fps)))
    frames = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((size / 2, size / 2), 4 * np.sin(i / 8), 1.0)
        m[:, 2] += (size / 160 * np.sin(i / 5), size / 250 * np.cos(i / 7))
        frames.append(cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT101))
    wav = None
    if audio:
        t = np.arange(int(seconds * 16000)) / 16000
        wav = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return media.write_video(path, frames, fps, wav, 16000 if audio else None, preset="ultrafast")


def run_cli(models_root, *args):
    env = dict(os.environ, TALKING_HEAD_MODELS=models_root, TALKING_HEAD_TINY_MODELS="1",
               PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "pipelines", "render", *args, "--preset", "ultrafast"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def check_mp4(path, seconds, fps, frames):
    info = media.probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert info.fps == fps
    assert abs(info.duration - seconds) <= 1.0 / float(fps) + 1e-3, (info.duration, seconds)
    assert sum(1 for _ in media.iter_frames(path, info)) == frames


def test_liveportrait_cli_video_driven(models_root, tmp_path):
    driving = synthetic_face_video(str(tmp_path / "driving.mp4"), 2.0, 25, size=384)
    out = str(tmp_path / "lp.mp4")
    run_cli(models_root, "liveportrait", "--source", PHOTO, "--driving", driving, "--out", out)
    check_mp4(out, 2.0, Fraction(25), 50)
    first = next(media.iter_frames(out))
    assert first.shape == (512, 512, 3)


def test_ditto_cli_photo_and_speech(models_root, tmp_path):
    out = str(tmp_path / "ditto.mp4")
    run_cli(models_root, "ditto", "--source", PHOTO, "--audio", SPEECH, "--out", out, "--seed", "3")
    seconds = len(media.read_audio(SPEECH)) / 16000
    check_mp4(out, seconds, Fraction(25), int(np.ceil(seconds * 25)))   # ceil(10.28 s x 25) = 258


def test_musetalk_cli_ntsc_video_and_image(models_root, tmp_path):
    src = synthetic_face_video(str(tmp_path / "ntsc.mp4"), 2.0, Fraction(30000, 1001), size=256, audio=False)
    seconds = len(media.read_audio(SPEECH)) / 16000
    out = str(tmp_path / "mt_video.mp4")
    run_cli(models_root, "musetalk", "--source", src, "--audio", SPEECH, "--out", out)
    ntsc = Fraction(30000, 1001)
    check_mp4(out, seconds, ntsc, int(np.ceil(seconds * float(ntsc) - 1e-9)))
    out2 = str(tmp_path / "mt_image.mp4")
    run_cli(models_root, "musetalk", "--source", PHOTO, "--audio", SPEECH, "--out", out2, "--bbox-shift", "4")
    check_mp4(out2, seconds, Fraction(25), int(np.ceil(seconds * 25)))


def test_missing_weights_offline_error_names_files_and_command(tmp_path):
    env = dict(os.environ, TALKING_HEAD_MODELS=str(tmp_path / "empty"), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "pipelines", "render", "ditto", "--source", PHOTO,
                           "--audio", SPEECH, "--out", str(tmp_path / "x.mp4")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "lmdm_v0.4_hubert.pth" in proc.stderr and "python -m pipelines download ditto" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.mp4").exists()
