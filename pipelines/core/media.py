"""Image, video and audio I/O through the ffmpeg binary that imageio-ffmpeg ships.

One decoder for everything: images and videos are read as 16-bit RGB (so 8-bit,
16-bit, grayscale, palette and RGBA inputs all come out as RGB float in 0..1), audio as
float32 at a requested rate. Writing streams frames to ffmpeg's stdin, so memory stays
flat whatever the video length, and muxes AAC audio in the same pass.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import time
import uuid
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Iterator, Optional

import numpy as np

from . import images
from .audio import fit_length, resample
from .errors import MediaError
from .runtime import CPU, RunContext

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".flv"}
AUDIO_EXTS = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus", ".wma"}
MIN_SIDE = 2  # a 1x1 "image" can't hold a face; anything smaller than this is refused


def _name(path: str) -> str:
    """How messages name a file: its name, never the folders of the machine it is on."""
    return os.path.basename(os.fspath(path)) or os.fspath(path)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg's, or $IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaError("imageio-ffmpeg is not installed: run `pip install imageio-ffmpeg`.") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise MediaError(f"No ffmpeg binary found ({exc}). Reinstall imageio-ffmpeg.") from None


# ---------------------------------------------------------------------------------------
# probing


@dataclass
class MediaInfo:
    path: str
    duration: Optional[float] = None
    width: int = 0
    height: int = 0
    fps: Optional[Fraction] = None
    video_codec: Optional[str] = None
    pix_fmt: Optional[str] = None
    audio_codec: Optional[str] = None
    sample_rate: Optional[int] = None
    channels: int = 0
    streams: list = field(default_factory=list)

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+(?:\[\w+\])?(?:\(\w+\))?: (Video|Audio): (.*)")


def exact_fps(value: float) -> Fraction:
    """ffmpeg prints rates rounded (29.97); recover NTSC rationals like 30000/1001."""
    if value <= 0:
        raise MediaError(f"invalid frame rate {value}")
    whole = round(value)
    if abs(value - whole) < 1e-3:
        return Fraction(whole)
    ntsc = round(value * 1.001)
    if abs(value - ntsc / 1.001) < 0.006:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(value).limit_denominator(1001)


def probe(path: str) -> MediaInfo:
    """Streams and duration of a media file, parsed from ffmpeg's report."""
    if not os.path.isfile(path):
        raise MediaError(f"File not found: {_name(path)}. Check the name, or upload the file again.")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{_name(path)} is empty (0 bytes). Choose another file.")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    report = proc.stderr.decode("utf-8", "replace")
    info = MediaInfo(path)
    m = _DURATION.search(report)
    if m:
        h, mi, s = m.groups()
        info.duration = int(h) * 3600 + int(mi) * 60 + float(s)
    for kind, desc in _STREAM.findall(report):
        info.streams.append((kind, desc))
        codec = desc.split(",")[0].split()[0]
        if kind == "Video" and info.video_codec is None:
            info.video_codec = codec
            size = re.search(r"(?:^|[ ,])(\d{1,5})x(\d{1,5})(?=[ ,\[]|$)", desc)
            if size:
                info.width, info.height = int(size.group(1)), int(size.group(2))
            pf = re.match(r"\w+(?: \([^)]*\))*(?: \([^)]*\))?, (\w+)", desc)
            info.pix_fmt = pf.group(1) if pf else None
            rate = re.search(r"([\d.]+) fps", desc) or re.search(r"([\d.]+) tbr", desc)
            if rate and float(rate.group(1)) > 0:
                info.fps = exact_fps(float(rate.group(1)))
        elif kind == "Audio" and info.audio_codec is None:
            info.audio_codec = codec
            sr = re.search(r"(\d+) Hz", desc)
            info.sample_rate = int(sr.group(1)) if sr else None
            info.channels = 1 if "mono" in desc else (2 if "stereo" in desc else 0)
    if not info.streams:
        first = next((ln for ln in report.splitlines() if path in ln or "Invalid" in ln), "")
        raise MediaError(
            f"{_name(path)} is not a readable image, video or audio file"
            + (f" (ffmpeg: {first.strip().replace(path, _name(path))})" if first else "")
            + ". Check the file, or convert it to PNG/MP4/WAV.")
    return info


def is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTS


# ---------------------------------------------------------------------------------------
# reading


def _run_decoder(args: list, what: str) -> subprocess.Popen:
    return subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def iter_frames(path: str, info: Optional[MediaInfo] = None, max_frames: Optional[int] = None,
                every_nth: int = 1, bits: int = 8) -> Iterator[np.ndarray]:
    """Yield decoded frames (H,W,3), uint8 (bits=8) or uint16 (bits=16), one at a time."""
    info = info or probe(path)
    if not info.has_video or info.width < 1:
        raise MediaError(f"{_name(path)} has no video or image stream.")
    w, h = info.width, info.height
    pix = "rgb24" if bits == 8 else "rgb48le"
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    frame_bytes = w * h * 3 * (1 if bits == 8 else 2)
    args = ["-i", path, "-map", "0:v:0"]
    if every_nth > 1:
        args += ["-vf", f"select=not(mod(n\\,{every_nth}))", "-fps_mode", "passthrough"]
    args += ["-f", "rawvideo", "-pix_fmt", pix, "-"]
    proc = _run_decoder(args, "video")
    count = 0
    try:
        while max_frames is None or count < max_frames:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            count += 1
            yield np.frombuffer(buf, dtype=dtype).reshape(h, w, 3)
    finally:
        proc.stdout.close()
        proc.kill()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.wait()
    if count == 0:
        raise MediaError(f"No frames could be decoded from {_name(path)}" + (f": {err.replace(path, _name(path))}" if err else "."))


def _to_float(frame: np.ndarray) -> np.ndarray:
    scale = 255.0 if frame.dtype == np.uint8 else 65535.0
    return frame.astype(np.float32) / scale


def read_image(path: str) -> np.ndarray:
    """Any image -> (H,W,3) float32 RGB in 0..1. Transparent pixels are composited on white
    (a transparent background must not look like a black wall to the face detector)."""
    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{_name(path)} is not an image.")
    if min(info.width, info.height) < MIN_SIDE:
        raise MediaError(f"{_name(path)} is {info.width}x{info.height} pixels; a portrait needs a real "
                         "image: use one of at least 64x64 (ideally 512x512 or more).")
    pix_fmt = (info.pix_fmt or "").lower()
    has_alpha = any(tag in pix_fmt for tag in ("rgba", "bgra", "argb", "abgr", "ya", "yuva", "pal8"))
    if not has_alpha:
        return _to_float(next(iter_frames(path, info, max_frames=1, bits=16)))
    w, h = info.width, info.height
    proc = _run_decoder(["-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgba64le", "-"],
                        "image")
    buf, err = proc.communicate()
    if len(buf) < w * h * 8:
        raise MediaError(f"Could not decode {_name(path)}: {err.decode('utf-8', 'replace').strip().replace(path, _name(path))}")
    rgba = np.frombuffer(buf[: w * h * 8], dtype="<u2").reshape(h, w, 4).astype(np.float32) / 65535.0
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def read_audio(path: str, sample_rate: int = 16000, mono: bool = True) -> np.ndarray:
    """Any ffmpeg-readable audio (or a video's audio track) -> float32 (T,) mono or (C,T)."""
    info = probe(path)
    if not info.has_audio:
        raise MediaError(f"{_name(path)} has no audio stream.")
    args = ["-i", path, "-map", "0:a:0", "-f", "f32le", "-ar", str(int(sample_rate))]
    if mono:
        args += ["-ac", "1"]
    proc = _run_decoder(args + ["-"], "audio")
    buf, err = proc.communicate()
    channels = 1 if mono else max(1, info.channels or 1)
    data = np.frombuffer(buf, dtype="<f4")
    if data.size == 0:
        raise MediaError(f"{_name(path)} holds no audio samples (zero-length audio). Choose a file with speech."
                         + (f" ffmpeg: {err.decode('utf-8', 'replace').strip()}" if err.strip() else ""))
    data = data[: data.size - data.size % channels]
    return data.copy() if mono else data.reshape(-1, channels).T.copy()


@dataclass
class Video:
    frames: np.ndarray  # (N,H,W,3) uint8 RGB
    fps: Fraction
    audio: Optional[np.ndarray]  # (C,T) float32 or None
    sample_rate: Optional[int]
    info: MediaInfo


def read_video(path: str, max_frames: Optional[int] = None, every_nth: int = 1,
               with_audio: bool = True, ctx: RunContext = CPU) -> Video:
    """Decode a whole video (frames, exact fps, its audio track if any)."""
    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{_name(path)} has no video stream.")
    fps = info.fps or Fraction(25)
    frames = []
    for fr in iter_frames(path, info, max_frames=max_frames, every_nth=every_nth):
        ctx.check()
        frames.append(fr)
    out = np.stack(frames)
    audio = sr = None
    if with_audio and info.has_audio:
        sr = info.sample_rate or 44100
        audio = read_audio(path, sample_rate=sr, mono=False)
    return Video(out, fps / every_nth, audio, sr, info)


# ---------------------------------------------------------------------------------------
# writing: the one output path (nodes and command line alike)

# sample rates the AAC encoder accepts; anything else is resampled to 48 kHz
AAC_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                       11025, 8000, 7350})
PARTIAL_PREFIX = ".partial-ths-"   # temporary outputs of this pack (swept when stale)


@dataclass(frozen=True)
class AudioTrack:
    """A sound track: ``samples`` (C,T) float32 in -1..1 at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    @classmethod
    def of(cls, waveform, rate) -> "AudioTrack":
        """From (T,), (C,T) or ComfyUI's (B,C,T) (first item), numpy or torch."""
        w = waveform.detach().cpu().float().numpy() if hasattr(waveform, "detach") else np.asarray(waveform)
        w = w[0] if w.ndim == 3 else w
        w = w[None] if w.ndim == 1 else w
        if w.ndim != 2:
            raise MediaError(f"audio must be (T,), (C,T) or (B,C,T); got shape {tuple(np.shape(waveform))}")
        try:
            r = float(rate)
        except (TypeError, ValueError):
            r = float("nan")
        if not math.isfinite(r) or r <= 0 or r != int(r):
            raise MediaError(f"the audio's sample rate must be a positive whole number of Hz, got {rate!r}")
        if w.shape[-1] == 0:
            raise MediaError("the audio is empty (zero samples); connect audio with sound in it")
        w = w.astype(np.float32, copy=False)
        if not np.isfinite(w).all():
            raise MediaError("the audio contains NaN or infinite samples; re-export it")
        return cls(w, int(r))

    @property
    def seconds(self) -> float:
        return self.samples.shape[-1] / self.rate

    def fitted(self, seconds: float) -> "AudioTrack":
        """Cut or zero-pad to ``seconds`` (the video's length)."""
        n = max(1, int(round(seconds * self.rate)))
        return AudioTrack(fit_length(self.samples, n), self.rate)

    def for_aac(self) -> "AudioTrack":
        """The same sound at a rate the AAC encoder takes (48 kHz when it needs one)."""
        if self.rate in AAC_RATES:
            return self
        import torch

        wav = resample(torch.from_numpy(np.ascontiguousarray(self.samples)), self.rate, 48000)
        return AudioTrack(wav.numpy(), 48000)


@dataclass(frozen=True)
class EncodeSettings:
    """H.264 settings: crf (lower = better, larger; 17-23 typical) and x264 preset."""

    crf: int = 19
    preset: str = "medium"
    codec: str = "libx264"


def write_audio(path: str, audio: np.ndarray, sample_rate: int) -> None:
    """(T,) or (C,T) float in -1..1 -> 16-bit PCM WAV (also the AAC encoder's input)."""
    audio = np.asarray(audio, np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(path, "wb") as wf:
        wf.setnchannels(pcm.shape[0])
        wf.setsampwidth(2)
        wf.setframerate(int(sample_rate))
        wf.writeframes(pcm.T.tobytes())


def _rate(fps) -> Fraction:
    try:
        value = fps if isinstance(fps, Fraction) else Fraction(float(fps)).limit_denominator(1001)
    except (TypeError, ValueError, OverflowError):
        value = None
    if value is None or value <= 0:
        raise MediaError(f"fps must be a positive number of frames per second, got {fps!r}")
    return value


def _partial(folder: str, suffix: str) -> str:
    """A fresh temporary name in ``folder`` holding this process's id (not created here:
    ffmpeg creates it with the user's umask, as any other output)."""
    return os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True       # someone else's process, or no way to tell (Windows): keep it
    return True


def sweep_partials(folder: str, max_age_s: float = 24 * 3600.0) -> list:
    """Remove temporary outputs this pack left in ``folder`` when a render was killed
    (its process is gone, or the file is older than ``max_age_s``). Returns the names."""
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(PARTIAL_PREFIX)]
    except OSError:
        return removed
    now = time.time()
    for name in names:
        path = os.path.join(folder, name)
        pid = name[len(PARTIAL_PREFIX):].split("-", 1)[0]
        try:
            stale = (pid.isdigit() and not _alive(int(pid))) or now - os.path.getmtime(path) > max_age_s
            if stale:
                os.remove(path)
                removed.append(name)
        except OSError:
            continue
    return removed


def write_video(path: str, frames: Iterable, fps, audio: Optional[AudioTrack] = None,
                encode: EncodeSettings = EncodeSettings(), ctx: RunContext = CPU,
                n_frames: Optional[int] = None) -> str:
    """Stream frames to an H.264 (yuv420p) MP4 with AAC audio muxed in the same pass.

    frames: an iterable of (H,W,3) or (B,H,W,3) frames, float 0..1 or uint8, consumed lazily.
    audio: cut or padded to ``n_frames / fps`` when ``n_frames`` (the frames that will
    come) is given, else written as it is; moved to 48 kHz when AAC cannot take its rate. Odd sizes are padded to even (yuv420p).
    The file is written under a temporary name in the output folder and renamed only on
    success: a failed or interrupted write never leaves a file under ``path`` or any
    temporary file behind. ``ctx`` is checked per frame and told the frames written.
    """
    rate = _rate(fps)
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    sweep_partials(out_dir)
    tmp_video, tmp_wav, proc = _partial(out_dir, ".mp4"), None, None
    log = tempfile.TemporaryFile()
    count = 0
    try:
        it = iter(frames)
        first = None
        for first in it:
            first = images.to_uint8(first)
            first = first.numpy() if hasattr(first, "numpy") else first
            break
        if first is None:
            raise MediaError("No frames to write: the video would be empty.")
        h, w = first.shape[-3:-1]
        args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "-"]
        if audio is not None:
            if n_frames is not None:
                audio = audio.fitted(int(n_frames) / float(rate))
            audio = audio.for_aac()
            tmp_wav = _partial(out_dir, ".wav")
            write_audio(tmp_wav, audio.samples, audio.rate)
            args += ["-i", tmp_wav, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "192k"]
        else:
            args += ["-map", "0:v:0"]
        args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", encode.codec, "-pix_fmt", "yuv420p",
                 "-crf", str(int(encode.crf)), "-preset", encode.preset, "-movflags", "+faststart",
                 "-f", "mp4", tmp_video]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)

        def feed(block: np.ndarray) -> None:
            nonlocal count
            block = block[None] if block.ndim == 3 else block
            if block.shape[1:] != (h, w, 3):
                raise MediaError(f"frame {count} has size {block.shape[1:3]}, expected {(h, w)}; "
                                 "all frames of a video must have one size.")
            for fr in block:
                ctx.check()
                proc.stdin.write(np.ascontiguousarray(fr).tobytes())
                count += 1
                ctx.report(count, n_frames or count)

        feed(first)
        for block in it:
            block = images.to_uint8(block)
            feed(block.numpy() if hasattr(block, "numpy") else block)
        proc.stdin.close()
        if proc.wait() != 0:
            log.seek(0)
            raise MediaError(f"ffmpeg failed to write {os.path.basename(path)}: "
                             f"{log.read().decode('utf-8', 'replace')[-800:]}")
        os.replace(tmp_video, path)
        return path
    except BrokenPipeError:
        log.seek(0)
        raise MediaError(f"ffmpeg stopped while writing {os.path.basename(path)}: "
                         f"{log.read().decode('utf-8', 'replace')[-800:]}") from None
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        for p in (tmp_video, tmp_wav):
            if p and os.path.exists(p):
                os.remove(p)


def frames_for_duration(seconds: float, fps: float) -> int:
    """Frames that cover ``seconds`` at ``fps`` (Ditto's rule: ceil(seconds·fps))."""
    return max(1, math.ceil(seconds * float(fps) - 1e-9))
