"""Portrait + driving video or speech -> MP4 through the command line, with fake tiny
checkpoints in the released layouts (real registry lookups, loaders and file formats).

Every family's test checks where the frames changed: inside the face region the render
shows (the fake networks' output is far from the photo), outside it the frame is the
portrait's own. A paste-back that returned the input frame, or the render everywhere,
fails these tests. Clips are about 1 s; the full 10 s speech clip is a bench.
"""
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from talking_head.pipelines.core import images, media
from tests import fake_models
from tests.paths import FIXTURES, ROOT, needs_shared

pytestmark = needs_shared
PHOTO = os.path.join(FIXTURES, "astronaut.png")
SPEECH = os.path.join(FIXTURES, "speech_16k.wav")
CANVAS = (640, 800)       # the portrait placed in a larger frame, so there is an outside
OFFSET = (64, 144)        # (y, x) of the photo in the canvas


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    return fake_models.write_all(str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    """The fixture photo on a grey canvas (PNG) and its frame as float."""
    frame = np.full(CANVAS + (3,), 0.45, np.float32)
    img = media.read_image(PHOTO)
    frame[OFFSET[0]:OFFSET[0] + img.shape[0], OFFSET[1]:OFFSET[1] + img.shape[1]] = img
    path = str(tmp_path_factory.mktemp("portrait") / "portrait.png")
    from PIL import Image

    Image.fromarray(images.to_uint8(frame)).save(path)
    return path, frame


@pytest.fixture(scope="module")
def speech_1s(tmp_path_factory):
    wav = media.read_audio(SPEECH)[:16000]
    path = str(tmp_path_factory.mktemp("speech") / "speech_1s.wav")
    media.write_audio(path, wav, 16000)
    return path, len(wav) / 16000


@pytest.fixture(scope="module")
def face(models_root, portrait):
    """Where the face of the canvas is: (crop_to_frame 3x3, MediaPipe 478 landmarks)."""
    from talking_head.pipelines import face
    from talking_head.pipelines.face.register import register_source

    folder = os.path.join(models_root, "talking_head_aux", "mediapipe")
    detector = face.MediaPipeFaceDetector.from_folder(folder)
    src = register_source(portrait[1][None], 25.0, detector)
    detector.close()
    return src.crop_to_frame[0].numpy(), src.landmarks[0].numpy()


def crop_square_mask(c2o, shape, lo, hi):
    """Frame pixels whose crop coordinates lie in [lo, hi]^2."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    inv = np.linalg.inv(c2o)
    u = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    v = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    return (u >= lo) & (u <= hi) & (v >= lo) & (v <= hi)


def changed_where(out_u8, base, inside, outside):
    """Mean |out - base| in grey levels inside and outside the given regions."""
    diff = np.abs(out_u8.astype(np.float32) - base * 255.0).mean(axis=-1)
    return float(diff[inside].mean()), float(diff[outside].mean())


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
    track = media.AudioTrack.of(wav, 16000) if audio else None
    return media.write_video(path, frames, fps, track, media.EncodeSettings(preset="ultrafast"))


def run_cli(models_root, *args):
    env = dict(os.environ, TALKING_HEAD_MODELS=models_root)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "tiny_cli.py"), "render", *args,
                           "--preset", "ultrafast"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def check_mp4(path, seconds, fps, frames):
    info = media.probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert info.fps == fps
    assert abs(info.duration - seconds) <= 1.0 / float(fps) + 1e-3, (info.duration, seconds)
    decoded = list(media.iter_frames(path, info))
    assert len(decoded) == frames
    return decoded


def assert_render_inside_crop(decoded, portrait, face):
    """The crop square's centre shows the render; beyond the square the portrait stays."""
    c2o, _ = face
    inside = crop_square_mask(c2o, CANVAS, 128, 384)
    outside = ~crop_square_mask(c2o, CANVAS, -24, 536)
    assert outside.mean() > 0.1 and inside.mean() > 0.01
    for frame in (decoded[0], decoded[len(decoded) // 2]):
        d_in, d_out = changed_where(frame, portrait[1], inside, outside)
        assert d_in > 12.0 and d_out < 2.0, (d_in, d_out)


def test_liveportrait_cli_video_driven(models_root, tmp_path, portrait, face):
    driving = synthetic_face_video(str(tmp_path / "driving.mp4"), 1.0, 25, size=384)
    out = str(tmp_path / "lp.mp4")
    run_cli(models_root, "liveportrait", "--source", portrait[0], "--driving", driving, "--out", out)
    decoded = check_mp4(out, 1.0, Fraction(25), 25)
    assert decoded[0].shape == CANVAS + (3,)
    assert_render_inside_crop(decoded, portrait, face)


def test_ditto_cli_photo_and_speech(models_root, tmp_path, portrait, speech_1s, face):
    out = str(tmp_path / "ditto.mp4")
    path, seconds = speech_1s
    run_cli(models_root, "ditto", "--source", portrait[0], "--audio", path, "--out", out, "--seed", "3")
    decoded = check_mp4(out, seconds, Fraction(25), int(np.ceil(seconds * 25)))
    assert_render_inside_crop(decoded, portrait, face)


def test_musetalk_cli_image_and_ntsc_video(models_root, tmp_path, portrait, speech_1s, face):
    path, seconds = speech_1s
    out = str(tmp_path / "mt_image.mp4")
    run_cli(models_root, "musetalk", "--source", portrait[0], "--audio", path, "--out", out,
            "--bbox-shift", "4")
    decoded = check_mp4(out, seconds, Fraction(25), int(np.ceil(seconds * 25)))
    # the lower face (around the lips) is generated; above the eyes and off the face it is not
    _, lm = face
    mouth = lm[[13, 14, 61, 291]].mean(axis=0)
    eye_y = lm[[33, 263], 1].mean()
    ys, xs = np.mgrid[0:CANVAS[0], 0:CANVAS[1]]
    inside = (np.abs(xs - mouth[0]) < 20) & (np.abs(ys - mouth[1]) < 10)
    outside = ys < eye_y
    for frame in (decoded[0], decoded[-1]):
        d_in, d_out = changed_where(frame, portrait[1], inside, outside)
        assert d_in > 12.0 and d_out < 2.0, (d_in, d_out)

    src = synthetic_face_video(str(tmp_path / "ntsc.mp4"), 1.0, Fraction(30000, 1001), size=256, audio=False)
    out2 = str(tmp_path / "mt_video.mp4")
    run_cli(models_root, "musetalk", "--source", src, "--audio", path, "--out", out2)
    ntsc = Fraction(30000, 1001)
    check_mp4(out2, seconds, ntsc, int(np.ceil(seconds * float(ntsc) - 1e-9)))


def test_missing_weights_offline_error_names_files_and_command(tmp_path):
    env = dict(os.environ, TALKING_HEAD_MODELS=str(tmp_path / "empty"), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "pipelines", "render", "ditto", "--source", PHOTO,
                           "--audio", SPEECH, "--out", str(tmp_path / "x.mp4")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "lmdm_v0.4_hubert.pth" in proc.stderr and "python -m pipelines download ditto" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.mp4").exists()
