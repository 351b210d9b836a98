"""Edge nodes: Load Source (image or video -> IMAGE, fps, AUDIO) and Write Video."""
from __future__ import annotations

import os

import numpy as np

from ..pipelines.core import images, media, timeline
from ..pipelines.core.errors import MediaError
from . import host
from .convert import audio_to_numpy, check_fps, check_image, image_to_tensor, numpy_to_audio
from .registry import register

SOURCE_EXTS = media.IMAGE_EXTS | media.VIDEO_EXTS
PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]


@register("Load Source", "io")
class LoadSource:
    DESCRIPTION = ("Load a portrait image or video from ComfyUI's input folder. Returns the frames, "
                   "the frame rate (exact: 29.97 stays 30000/1001), the video's audio track if it has "
                   "one, and an info line. Names outside the input folder are refused; a server "
                   f"operator can allow absolute paths with {host.ABSOLUTE_PATHS_ENV}=1.")
    RETURN_TYPES = ("IMAGE", "FLOAT", "AUDIO", "STRING")
    RETURN_NAMES = ("frames", "fps", "audio", "info")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (host.input_files(SOURCE_EXTS) or [""], {"image_upload": True, "tooltip":
                           "An image or video in ComfyUI's input folder (upload one here)."}),
                "max_frames": ("INT", {"default": 0, "min": 0, "max": 100000,
                                       "tooltip": "0 = every frame. Caps memory for long videos."}),
                "every_nth": ("INT", {"default": 1, "min": 1, "max": 100,
                                      "tooltip": "Keep one frame in N (the fps is divided by N)."}),
            },
            "optional": {
                "video": ("VIDEO", {"tooltip": "A core VIDEO (e.g. from Load Video): used instead of "
                                              "the file, with its frames, frame rate and sound."}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, source, **_):
        try:
            path = host.resolve_input(source)
        except MediaError:
            return source
        return f"{source}:{os.path.getmtime(path)}" if os.path.isfile(path) else source

    @classmethod
    def VALIDATE_INPUTS(cls, source):
        # no file chosen is fine when a VIDEO is connected (load() says so otherwise)
        return True if not (source or "").strip() else host.check_input_file(source)

    def load(self, source, max_frames=0, every_nth=1, video=None):
        if video is not None:
            return self._from_video(video, max_frames, every_nth)
        p = host.resolve_input(source)
        name = os.path.basename(p)
        if media.is_image_path(p):
            frame = media.read_image(p)
            info = f"image {frame.shape[1]}x{frame.shape[0]} from {name}"
            return image_to_tensor(frame), 25.0, None, info
        video = media.read_video(p, max_frames=max_frames or None, every_nth=every_nth,
                                 ctx=host.context("load"))
        frames = images.to_float(video.frames)
        if video.frames.shape[0] == 1 and not video.info.has_audio:  # a still image with an odd extension
            return image_to_tensor(frames), 25.0, None, f"image from {name}"
        n, h, w = video.frames.shape[:3]
        fps = float(video.fps)
        aud = numpy_to_audio(video.audio, video.sample_rate) if video.audio is not None else None
        info = (f"video {w}x{h}, {n} frames at {fps:.3f} fps ({video.fps}), "
                + (f"audio {video.sample_rate} Hz" if aud else "no audio"))
        return image_to_tensor(frames), fps, aud, info

    @staticmethod
    def _from_video(video, max_frames, every_nth):
        frames, rate, aud = host.read_video_value(video, max_frames, every_nth)
        n, h, w = frames.shape[:3]
        info = (f"video {w}x{h}, {n} frames at {float(rate):.3f} fps ({rate}), "
                + (f"audio {aud['sample_rate']} Hz" if aud else "no audio") + " (VIDEO input)")
        return image_to_tensor(images.to_float(frames)), float(rate), aud, info


LENGTH_MODES = ["match audio (loop frames)", "match audio (hold last frame)",
                "match audio (ping-pong)", "match frames (cut or pad audio)"]


def frame_order(n_frames: int, n_out: int, mode: str) -> np.ndarray:
    """Indices of the input frames used for ``n_out`` output frames."""
    kind = "hold" if "hold" in mode else "ping-pong" if "ping-pong" in mode else "cycle"
    return timeline.frame_order(n_frames, n_out, kind)


@register("Write Video", "io")
class WriteVideo:
    DESCRIPTION = ("Write frames (+ audio) to an H.264/AAC MP4 in the output folder, streaming "
                   "frames to ffmpeg. With audio, the video's length follows the audio (frames "
                   "loop, hold or ping-pong) unless 'match frames' is chosen. The result plays "
                   "in the node; the file's path and a core VIDEO come out (for Save Video, "
                   "previews and other packs).")
    RETURN_TYPES = ("STRING", "VIDEO")
    RETURN_NAMES = ("path", "video")
    FUNCTION = "write"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("IMAGE",),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001,
                                  "tooltip": "Frames per second of the video (29.97 is kept exact)."}),
                "filename_prefix": ("STRING", {"default": "TalkingHead", "tooltip":
                                    "Name in the output folder; may hold sub-folders (TalkingHead/clip)."}),
                "length": (LENGTH_MODES, {"default": LENGTH_MODES[0], "tooltip":
                           "With audio: the video lasts as long as the audio (the frames loop, hold "
                           "or ping-pong), or as long as the frames (the audio is cut or padded)."}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 51,
                                "tooltip": "x264 quality: lower is better and larger (17-23 is typical)."}),
                "preset": (PRESETS, {"default": "medium", "tooltip": "x264 speed/size trade-off."}),
            },
            "optional": {"audio": ("AUDIO",)},
        }

    def write(self, frames, fps, filename_prefix, length=LENGTH_MODES[0], crf=19, preset="medium",
              audio=None):
        frames, fps = check_image(frames, "frames"), check_fps(fps)
        path, subfolder, name = _output_path(filename_prefix)
        track = None
        n_in = n_out = int(frames.shape[0])
        if audio is not None:
            track = media.AudioTrack.of(*audio_to_numpy(audio))
            # frames that already cover the audio to within a frame (e.g. Ditto's
            # ceil(seconds x fps)) are kept as they are; otherwise loop/hold/ping-pong
            if length.startswith("match audio") and abs(n_in - track.seconds * fps) >= 1:
                n_out = max(1, round(track.seconds * fps))
        order = frame_order(n_in, n_out, length)
        ctx = host.context("write video")

        def chunks(size=16):
            for s in range(0, n_out, size):
                yield frames[order[s:s + size]]

        media.write_video(path, chunks(), fps, track, media.EncodeSettings(crf, preset), ctx, n_out)
        preview = {"filename": name, "subfolder": subfolder, "type": "output"}
        return {"ui": {"images": [preview], "animated": (True,)},
                "result": (path, host.video_from_file(path))}


def _output_path(prefix: str):
    """A new, non-clashing file in the output folder: <prefix>_00001.mp4 (prefix may hold
    sub-folders, as with core Save nodes)."""
    prefix = (prefix or "TalkingHead").strip().replace("\\", "/")
    root = host.output_dir()
    sub, base = os.path.split(prefix)
    folder = os.path.normpath(os.path.join(root, sub))
    if os.path.commonpath([folder, os.path.abspath(root)]) != os.path.abspath(root):
        raise MediaError(f"filename_prefix '{prefix}' points outside the output folder.")
    os.makedirs(folder, exist_ok=True)
    existing = [f for f in os.listdir(folder) if f.startswith(base + "_") and f.endswith(".mp4")]
    counter = 1 + max([int(f[len(base) + 1:-4]) for f in existing if f[len(base) + 1:-4].isdigit()] or [0])
    name = f"{base}_{counter:05d}.mp4"
    return os.path.join(folder, name), sub, name
