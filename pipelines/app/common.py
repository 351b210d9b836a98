"""Pieces every ``render <family>`` command shares: reading the source, blend options,
the progress bar and the models folder."""
from __future__ import annotations

import argparse
import os

import numpy as np

from .. import composite
from ..core import media, runtime, weights
from ..core.errors import MediaError


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="portrait image or video")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--max-frames", type=int, default=0, help="use at most N source video frames (0 = all)")
    p.add_argument("--manual-box", default="", help="x,y,w,h of the face when no detector finds it")
    p.add_argument("--models", default=None, help="models root (default $TALKING_HEAD_MODELS or <pack>/models)")
    p.add_argument("--download", action="store_true", help="download missing weights into the models folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", choices=runtime.DTYPE_CHOICES)
    p.add_argument("--crf", type=int, default=19)
    p.add_argument("--preset", default="medium")


def add_blend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blend", default="replace", choices=tuple(composite.MODES))
    p.add_argument("--alpha", type=float, default=None, help="render weight for --blend custom")
    p.add_argument("--region", default="crop", choices=composite.REGIONS)
    p.add_argument("--feather", type=float, default=None, help="soft edge width in frame pixels")
    p.add_argument("--color-match", default="off", choices=composite.COLOR_MATCH)


def roots(args) -> dict:
    if args.models:
        os.environ["TALKING_HEAD_MODELS"] = os.path.abspath(args.models)
    return {fam: weights.folders(fam) for fam in weights.FAMILIES}


def device_dtype(args):
    device = runtime.pick_device(args.device)
    return device, runtime.resolve_dtype(args.dtype, device)


def read_source(path: str, max_frames: int = 0):
    """(frames (N,H,W,3) float32, fps, audio (C,T) or None, sample rate or None)."""
    if media.is_image_path(path):
        return media.read_image(path)[None], 25.0, None, None
    video = media.read_video(path, max_frames=max_frames or None)
    return video.frames, float(video.fps), video.audio, video.sample_rate


def read_speech(path: str, rate: int = 16000) -> np.ndarray:
    wav = media.read_audio(path, sample_rate=rate)
    if wav.size < rate // 10:
        raise MediaError(f"{path} holds less than 0.1 s of audio; use a clip with speech in it.")
    return wav


def progress(desc: str):
    bar = {}

    def report(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = runtime.TerminalProgress(total, desc)
        bar["bar"].update_absolute(done)

    return report
