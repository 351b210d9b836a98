"""Pieces every ``render <family>`` command shares: arguments (declared without importing
torch, so ``--help`` answers at once), the run context, the models folder, reading the
source and the speech, and writing the result."""
from __future__ import annotations

import argparse
import os

from ..core import choices


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="portrait image or video")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--max-frames", type=int, default=0, help="use at most N source video frames (0 = all)")
    p.add_argument("--manual-box", default="", help="x,y,w,h of the face when no detector finds it")
    p.add_argument("--models", default=None, help="models root (default $TALKING_HEAD_MODELS or <pack>/models)")
    p.add_argument("--download", action="store_true", help="download missing weights into the models folder")
    p.add_argument("--device", default="auto", help=choices.DEVICES_HELP)
    p.add_argument("--dtype", default="auto", choices=choices.DTYPES)
    p.add_argument("--crf", type=int, default=19, help="x264 quality: lower is better and larger")
    p.add_argument("--preset", default="medium", help="x264 preset (ultrafast ... veryslow)")


def add_blend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blend", default="replace", choices=tuple(choices.BLEND_MODES))
    p.add_argument("--alpha", type=float, default=None, help="render weight for --blend custom")
    p.add_argument("--region", default="crop", choices=choices.BLEND_REGIONS)
    p.add_argument("--feather", type=float, default=None, help="soft edge width in frame pixels")
    p.add_argument("--color-match", default="off", choices=choices.COLOR_MATCH)


def blend_spec(args, crop_edge: str):
    from ..composite import BlendSpec

    return BlendSpec(args.blend, args.alpha, args.region, args.feather, args.color_match, crop_edge)


def roots(args) -> dict:
    from ..core import weights

    if args.models:
        os.environ["TALKING_HEAD_MODELS"] = os.path.abspath(args.models)
    return {fam: weights.folders(fam) for fam in weights.FAMILIES}


def context(args):
    """The run context of a command: its device and dtype (no progress of its own)."""
    from ..core import runtime

    return runtime.RunContext.default(args.device, args.dtype)


def stage(args, ctx, desc: str):
    """``ctx`` reporting to a terminal bar labelled ``desc`` (none when ``args.quiet``:
    the batch runner draws its own)."""
    return ctx.with_progress(None if getattr(args, "quiet", False) else progress(desc))


def progress(desc: str):
    """A progress sink drawing a terminal bar labelled ``desc`` once work starts."""
    from ..core import runtime

    bar = {}

    def report(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = runtime.TerminalProgress(total, desc)
        bar["bar"].update_absolute(done, total)

    return report


def register_source(args, detector, renderer=None, ctx=None, desc: str = "source"):
    """--source read and registered (SOURCE): the face track, the manual box if given, and
    with ``renderer`` the appearance and motion of its frames."""
    from ..face import TrackSettings
    from ..face.register import parse_box
    from . import steps

    frames, fps, _ = read_source(args.source, args.max_frames)
    return steps.register(frames, fps, detector, renderer,
                          TrackSettings(manual_box=parse_box(args.manual_box)), stage(args, ctx, desc))


def read_source(path: str, max_frames: int = 0):
    """(frames (N,H,W,3) uint8, fps, AudioTrack or None)."""
    from ..core import images, media

    if media.is_image_path(path):
        return images.to_uint8(media.read_image(path))[None], 25.0, None
    video = media.read_video(path, max_frames=max_frames or None)
    audio = media.AudioTrack.of(video.audio, video.sample_rate) if video.audio is not None else None
    return video.frames, float(video.fps), audio


def read_speech(path: str):
    """The speech file's own track (AudioTrack) after checking it holds sound."""
    from ..core import media
    from ..core.errors import MediaError

    info = media.probe(path)
    rate = info.sample_rate or 16000
    track = media.AudioTrack.of(media.read_audio(path, sample_rate=rate, mono=False), rate)
    if track.seconds < 0.1:
        raise MediaError(f"{os.path.basename(path)} holds less than 0.1 s of audio; use a clip "
                         "with speech in it.")
    return track


def write(args, frames, fps: float, n_frames: int, audio, ctx) -> tuple:
    """The result file: frames (an iterator of uint8 chunks) + audio fitted to the video.
    Returns (path, frames written)."""
    from ..core import media

    encode = media.EncodeSettings(args.crf, args.preset)
    return media.write_video(args.out, frames, fps, audio, encode, ctx.with_progress(None), n_frames), n_frames
