"""Ditto: speech audio drives a portrait (image or video) through audio -> motion diffusion.

    python -m pipelines render ditto --source face.png --audio speech.wav --out out.mp4
"""
from __future__ import annotations

from ..core import choices
from . import common


def emotion(text):
    """--emotion: 0-7 or a name; validated before anything loads."""
    if text is None:
        return None
    if text.isdigit() and 0 <= int(text) < len(choices.EMOTIONS):
        return int(text)
    if text.lower() in choices.EMOTIONS:
        return text.lower()
    import argparse

    raise argparse.ArgumentTypeError(f"{text!r} is not an emotion: use 0-7 or one of "
                                     f"{', '.join(choices.EMOTIONS)}")


def add_arguments(p) -> None:
    common.add_source_args(p)
    p.add_argument("--audio", required=True, help="speech audio (or a video with sound)")
    p.add_argument("--layout", default="auto", choices=choices.LP_LAYOUTS,
                   help="where the renderer networks come from (Ditto ships LivePortrait's)")
    p.add_argument("--emotion", type=emotion, default=None,
                   help=f"0-7 or one of {', '.join(choices.EMOTIONS)} (default: the released cfg's)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default from the cfg)")
    p.add_argument("--overlap", type=int, default=None, help="window overlap in frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--online", action="store_true", help="the streaming algorithm (low latency)")
    p.add_argument("--fade-in", type=int, default=0, help="frames easing in from the still")
    p.add_argument("--fade-out", type=int, default=0, help="frames easing back to the still")
    for axis in ("pitch", "yaw", "roll"):
        p.add_argument(f"--delta-{axis}", type=float, default=None, help=f"add degrees of {axis}")
    p.add_argument("--template-frames", type=int, default=None,
                   help="video source: use only its first N frames")
    p.add_argument("--preserve-motion", action="store_true",
                   help="video source: keep its own head motion, drive only the lips")
    p.add_argument("--own-identity", action="store_true",
                   help="condition on the portrait instead of the cfg's reference face")
    p.add_argument("--reference-quirks", action="store_true",
                   help="reproduce the original's control bugs (alpha/fade)")
    common.add_blend_args(p)


def render(args) -> tuple:
    """Render one clip as ``args`` say: (output path, frames)."""
    from ..ditto import DittoControls, DittoSampling, hubert_features, source_motion
    from ..liveportrait.drive import StitchOptions, keypoints_for
    from ..liveportrait.video import stream_video
    from . import models

    spec = common.blend_spec(args, "ditto")
    roots, ctx = common.roots(args), common.context(args)
    if not args.download:
        models.require([("ditto", "pytorch"), ("aux", "mediapipe")], roots,
                       None if args.layout in ("auto", "ditto") else args.layout)
    bundle = models.load_ditto_bundle(roots, args.download, ctx)
    cfg = bundle["cfg"]
    renderer = models.load_liveportrait(args.layout, roots, args.download, ctx)
    detector = models.detector("mediapipe", roots, args.download)
    source = common.register_source(args, detector, renderer, ctx)
    speech = common.read_speech(args.audio)
    feats = hubert_features(speech.samples, speech.rate, bundle["hubert"], ctx)
    overall = dict(cfg.overall_ctrl_info)
    overall.update({f"delta_{a}": getattr(args, f"delta_{a}") for a in ("pitch", "yaw", "roll")
                    if getattr(args, f"delta_{a}") is not None})
    sampling = DittoSampling(steps=args.steps, overlap=args.overlap, emotion=args.emotion,
                             seed=args.seed, online=args.online or None,
                             use_reference_identity=not args.own_identity,
                             template_n_frames=args.template_frames)
    controls = DittoControls(preserve_motion=args.preserve_motion, fade_in=args.fade_in,
                             fade_out=args.fade_out, overall=overall,
                             reference_quirks=args.reference_quirks)
    motion = source_motion(bundle, feats, source, sampling, controls,
                           common.stage(args, ctx, "motion"))
    keypoints = keypoints_for(source, motion, renderer, StitchOptions(stitching=cfg.flag_stitching))
    frames_out = stream_video(renderer, source, keypoints, spec,
                              common.stage(args, ctx, "render"))
    return common.write(args, frames_out, keypoints.fps, len(keypoints), speech, ctx)


def run(args) -> int:
    print(render(args)[0])
    return 0
