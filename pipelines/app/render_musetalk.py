"""MuseTalk v1.5: lip-sync a portrait video (or image) to speech.

    python -m pipelines render musetalk --source clip.mp4 --audio speech.wav --out out.mp4
"""
from __future__ import annotations

from ..core import choices
from . import common


def add_arguments(p) -> None:
    common.add_source_args(p)
    p.add_argument("--audio", required=True, help="speech audio (or a video with sound)")
    p.add_argument("--bbox-shift", type=int, default=0, help="move the mouth region (+ lower, - higher)")
    p.add_argument("--extra-margin", type=int, default=10)
    p.add_argument("--parsing-mode", default="jaw", choices=choices.PARSING_MODES)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=None,
                   help="sample the VAE latents with this seed (default: the posterior mean, deterministic)")


def render(args) -> tuple:
    """Render one clip as ``args`` say: (output path, frames)."""
    from ..core import media
    from ..core.audio import prepare_audio
    from ..musetalk import AvatarSettings, avatar_from_source, whisper_features
    from ..musetalk.video import stream_video
    from . import models

    settings = AvatarSettings(parsing_mode=args.parsing_mode, bbox_shift=args.bbox_shift,
                              extra_margin=args.extra_margin, seed=args.seed)
    roots, ctx = common.roots(args), common.context(args)
    if not args.download:
        models.require([("musetalk", "v15"), ("aux", "mediapipe")], roots)
    bundle = models.load_musetalk_bundle(roots, args.download, ctx)
    detector = models.detector("mediapipe", roots, args.download)
    source = common.register_source(args, detector, None, ctx, "faces")
    fps = source.fps
    avatar = avatar_from_source(bundle, source, settings, common.stage(args, ctx, "avatar"),
                                args.batch_size)
    speech = common.read_speech(args.audio)
    n_frames = media.frames_for_duration(speech.seconds, fps)
    feats = whisper_features(bundle, prepare_audio(speech.samples, speech.rate), fps, n_frames=n_frames,
                             check_interrupt=ctx.check)
    frames_out = stream_video(bundle, avatar, feats, common.stage(args, ctx, "lip-sync"),
                              batch_size=args.batch_size)
    return common.write(args, frames_out, fps, n_frames, speech, ctx)


def run(args) -> int:
    print(render(args)[0])
    return 0
