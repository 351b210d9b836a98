"""Media I/O: reading every image flavour, exact fps, streaming MP4 writing with AAC."""
import os
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from talking_head.pipelines.core import media
from talking_head.pipelines.core.errors import MediaError
from tests.paths import FIXTURES, needs_shared


def _ffmpeg(*args):
    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def test_exact_fps_recovers_ntsc_rates():
    assert media.exact_fps(29.97) == Fraction(30000, 1001)
    assert media.exact_fps(23.98) == Fraction(24000, 1001)
    assert media.exact_fps(59.94) == Fraction(60000, 1001)
    assert media.exact_fps(25.0) == Fraction(25)
    assert media.exact_fps(12.5) == Fraction(25, 2)


@pytest.mark.parametrize("pix_fmt", ["rgb24", "rgba", "gray", "rgb48be", "gray16be", "pal8"])
def test_read_image_any_flavour_gives_rgb_float(tmp_path, pix_fmt):
    path = str(tmp_path / f"img_{pix_fmt}.png")
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=1", "-frames:v", "1", "-pix_fmt", pix_fmt, path)
    img = media.read_image(path)
    assert img.shape == (48, 64, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05
    if pix_fmt.startswith("gray"):
        assert np.allclose(img[..., 0], img[..., 1]) and np.allclose(img[..., 1], img[..., 2])


def test_rgba_transparent_pixels_become_white(tmp_path):
    path = str(tmp_path / "clear.png")
    _ffmpeg("-f", "lavfi", "-i", "color=c=black@0.0:size=16x16,format=rgba", "-frames:v", "1", path)
    assert np.allclose(media.read_image(path), 1.0, atol=1e-3)


def test_sixteen_bit_precision_is_kept(tmp_path):
    cv2 = pytest.importorskip("cv2")
    ramp = (np.arange(64 * 8, dtype=np.uint16) + 30000).reshape(8, 64)  # steps of 1/65535
    path = str(tmp_path / "ramp16.png")
    cv2.imwrite(path, np.dstack([ramp, ramp, ramp]))
    got = np.round(media.read_image(path)[..., 0] * 65535).astype(np.int64)
    assert np.array_equal(got, ramp.astype(np.int64))


def _assert_h264_aac(path, seconds, fps=None, frames=None):
    info = media.probe(path)
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p" and info.audio_codec == "aac"
    assert abs(info.duration - seconds) <= 0.040, (info.duration, seconds)
    if fps is not None:
        assert info.fps == fps
    if frames is not None:
        n = sum(1 for _ in media.iter_frames(path, info))
        assert n == frames


@needs_shared
def test_image_looped_over_speech_gives_h264_aac_of_audio_length(tmp_path):
    img = media.read_image(os.path.join(FIXTURES, "astronaut.png"))
    wav = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))
    seconds = len(wav) / 16000
    n = round(seconds * 25)
    out = media.write_video(str(tmp_path / "out.mp4"), (img for _ in range(n)), 25,
                            media.AudioTrack.of(wav, 16000))
    _assert_h264_aac(out, seconds, Fraction(25), frames=n)


@needs_shared
def test_ntsc_video_round_trip_keeps_rate_and_audio_length(tmp_path):
    src = str(tmp_path / "ntsc.mp4")
    wav_path = os.path.join(FIXTURES, "speech_16k.wav")
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=30000/1001", "-i", wav_path, "-t", "4",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", src)
    video = media.read_video(src)
    assert video.fps == Fraction(30000, 1001)
    assert video.audio is not None and video.audio.shape[0] >= 1
    seconds = video.audio.shape[-1] / video.sample_rate
    n = round(seconds * float(video.fps))
    frames = (video.frames[i % len(video.frames)] for i in range(n))
    out = media.write_video(str(tmp_path / "out.mp4"), frames, video.fps,
                            media.AudioTrack.of(video.audio, video.sample_rate))
    _assert_h264_aac(out, seconds, Fraction(30000, 1001), frames=n)


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = [np.full((31, 45, 3), 0.5, np.float32)] * 5
    out = media.write_video(str(tmp_path / "odd.mp4"), frames, 10)
    info = media.probe(out)
    assert (info.width, info.height) == (46, 32)


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "never.mp4"

    def frames():
        yield np.zeros((32, 32, 3), np.float32)
        yield np.zeros((32, 32, 3), np.float32)
        raise KeyboardInterrupt  # an interruption mid-render

    with pytest.raises(KeyboardInterrupt):
        media.write_video(str(target), frames(), 25)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp file left behind either


def test_frames_of_different_sizes_are_refused(tmp_path):
    frames = [np.zeros((32, 32, 3), np.float32), np.zeros((16, 16, 3), np.float32)]
    with pytest.raises(MediaError, match="one size"):
        media.write_video(str(tmp_path / "x.mp4"), frames, 25)
    assert not (tmp_path / "x.mp4").exists()


# bad media: clear messages, never a stack trace from deep inside a decoder


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        media.read_video(str(p))


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    with pytest.raises(MediaError, match="not a readable"):
        media.read_video(str(p))


def test_zero_length_audio(tmp_path):
    p = str(tmp_path / "silence.wav")
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", p)
    with pytest.raises(MediaError, match="(no audio samples|not a readable|no audio stream)"):
        media.read_audio(p)


def test_one_pixel_image(tmp_path):
    p = str(tmp_path / "dot.png")
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:size=1x1", "-frames:v", "1", p)
    with pytest.raises(MediaError, match="1x1"):
        media.read_image(p)


def test_missing_file():
    with pytest.raises(MediaError, match="not found"):
        media.probe("/nonexistent/face.png")
