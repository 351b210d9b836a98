"""JoyVASA: speech drives a portrait through audio -> motion diffusion, rendered by LivePortrait.

    python -m pipelines render joyvasa --source face.png --audio speech.wav --out out.mp4
"""
from __future__ import annotations

from ..core import choices
from . import common


def add_arguments(p) -> None:
    common.add_source_args(p)
    p.add_argument("--audio", required=True, help="speech audio (or a video with sound)")
    p.add_argument("--layout", default="auto", choices=choices.LP_LAYOUTS,
                   help="where the renderer networks come from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cfg-scale", type=float, default=2.8, help="guidance on the audio (1 = off)")
    p.add_argument("--fps", type=float, default=25.0, help="output frames per second")
    p.add_argument("--smoothing", type=float, default=0.99,
                   help="head-pose smoothing 0..1 (the reference's 0.99 keeps the head calm)")
    p.add_argument("--expression-smoothing", type=float, default=0.0,
                   help="expression smoothing 0..1 (calms jittery lips and eyes)")
    p.add_argument("--animate", default="all", choices=choices.JOYVASA_REGIONS,
                   help="what follows the audio; the rest stays the portrait's")
    p.add_argument("--multiplier", type=float, default=1.0, help="scales the generated motion")
    p.add_argument("--blinks", action="store_true", help="add seeded blinks (JoyVASA has none)")
    p.add_argument("--steps", type=int, default=0,
                   help="denoising steps (0 = the checkpoint's 50; fewer is faster and coarser)")
    p.add_argument("--source-frames", default="ping-pong", choices=choices.LENGTH_MODES,
                   help="a video source: how its frames follow the motion")
    p.add_argument("--pe-mode", default="prefix", choices=choices.JOYVASA_PE_MODES,
                   help="positional encoding: prefix = what the released weights were trained with")
    common.add_blend_args(p)


def render(args) -> tuple:
    """Render one clip as ``args`` say: (output path, frames)."""
    from ..joyvasa import JoyVASASettings, audio_features, motion_from_features
    from ..liveportrait.drive import StitchOptions, keypoints_for
    from ..liveportrait.video import stream_video
    from . import models

    spec = common.blend_spec(args, "liveportrait")
    settings = JoyVASASettings(cfg_scale=args.cfg_scale, seed=args.seed, pe_mode=args.pe_mode,
                               smoothing=args.smoothing, expression_smoothing=args.expression_smoothing,
                               region=args.animate, multiplier=args.multiplier, blinks=args.blinks,
                               fps=args.fps, steps=args.steps)
    roots, ctx = common.roots(args), common.context(args)
    if not args.download:
        models.require([("joyvasa", "hubert_chinese"), ("aux", "mediapipe")], roots, args.layout)
    bundle = models.load_joyvasa_bundle(roots, args.download, ctx)
    renderer = models.load_liveportrait(args.layout, roots, args.download, ctx)
    detector = models.detector("mediapipe", roots, args.download)
    source = common.register_source(args, detector, renderer, ctx)
    speech = common.read_speech(args.audio)
    feats = audio_features(bundle, speech.samples, speech.rate, common.stage(args, ctx, "audio"))
    motion = motion_from_features(bundle, feats, settings, common.stage(args, ctx, "motion")).to_motion()
    motion = motion.on_source(len(source), args.source_frames)
    keypoints = keypoints_for(source, motion, renderer, StitchOptions())
    frames_out = stream_video(renderer, source, keypoints, spec, common.stage(args, ctx, "render"))
    return common.write(args, frames_out, keypoints.fps, len(keypoints), speech, ctx)


def run(args) -> int:
    print(render(args)[0])
    return 0
