"""Ditto: speech audio drives a portrait (image or video) through audio -> motion diffusion.

    python -m pipelines render ditto --source face.png --audio speech.wav --out out.mp4
"""
from __future__ import annotations

from . import animate, common as cli_common, models, render_video
from ..core import media, runtime
from . import sources as source_ops
from ..ditto.conditions import EMOTIONS
from ..ditto.pipeline import source_motion
from ..ditto.hubert import SAMPLE_RATE, hubert_features


def add_arguments(p) -> None:
    cli_common.add_source_args(p)
    p.add_argument("--audio", required=True, help="speech audio (or a video with sound)")
    p.add_argument("--layout", default="auto", choices=models.LP_LAYOUTS,
                   help="where the renderer networks come from (Ditto ships LivePortrait's)")
    p.add_argument("--emotion", default=None, help=f"0-7 or one of {', '.join(EMOTIONS)} "
                   "(default: the released cfg's emotion track)")
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
    cli_common.add_blend_args(p)


def run(args) -> int:
    roots = cli_common.roots(args)
    device, dtype = cli_common.device_dtype(args)
    bundle = models.load_ditto_bundle(roots, args.download, device, dtype)
    cfg = bundle["cfg"]
    renderer = models.load_liveportrait(args.layout, roots, args.download, device, dtype)
    detector = source_ops.make_detector("mediapipe", roots, args.download)
    frames, fps, _, _ = cli_common.read_source(args.source, args.max_frames)
    source = source_ops.register_source(
        frames, fps, detector, renderer, manual_box=source_ops.parse_box(args.manual_box),
        progress=cli_common.progress("source"), check_interrupt=runtime.check_interrupt)
    speech = cli_common.read_speech(args.audio, SAMPLE_RATE)
    feats = hubert_features(speech, SAMPLE_RATE, bundle["hubert"],
                            check_interrupt=runtime.check_interrupt)
    emotion = int(args.emotion) if args.emotion and args.emotion.isdigit() else args.emotion
    overall = dict(cfg.overall_ctrl_info)
    overall.update({f"delta_{a}": getattr(args, f"delta_{a}") for a in ("pitch", "yaw", "roll")
                    if getattr(args, f"delta_{a}") is not None})
    motion = source_motion(bundle, feats, source, seed=args.seed, steps=args.steps, overlap=args.overlap,
                           emotion=emotion, online=args.online or None,
                           use_reference_identity=not args.own_identity,
                           template_n_frames=args.template_frames, progress=cli_common.progress("motion"),
                           check_interrupt=runtime.check_interrupt, preserve_motion=args.preserve_motion,
                           fade_in=args.fade_in, fade_out=args.fade_out, overall=overall,
                           reference_quirks=args.reference_quirks)
    keypoints = animate.keypoints_for(source, motion, renderer, stitching=cfg.flag_stitching)
    info = media.probe(args.audio)
    rate = info.sample_rate or SAMPLE_RATE
    audio = media.read_audio(args.audio, sample_rate=rate, mono=False)
    render_video.write(args.out, source, keypoints, renderer, audio, rate, args.blend, args.region,
                       args.alpha, args.feather, "ditto", args.color_match, args.crf, args.preset,
                       progress=cli_common.progress("render"), check_interrupt=runtime.check_interrupt)
    print(args.out)
    return 0
