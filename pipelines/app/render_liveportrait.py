"""LivePortrait video driving: a driving video moves a portrait (image or video).

    python -m pipelines render liveportrait --source face.png --driving drive.mp4 --out out.mp4
"""
from __future__ import annotations

from . import animate, common as cli_common, models, render_video
from ..core import runtime
from . import sources as source_ops


def add_arguments(p) -> None:
    cli_common.add_source_args(p)
    p.add_argument("--driving", required=True, help="driving video (its audio goes into the output)")
    p.add_argument("--layout", default="auto", choices=models.LP_LAYOUTS)
    p.add_argument("--motion", default="relative", choices=("relative", "absolute"))
    p.add_argument("--driving-option", default="expression-friendly",
                   choices=("expression-friendly", "pose-friendly"))
    p.add_argument("--multiplier", type=float, default=1.0)
    p.add_argument("--length", default="cycle", choices=animate.LENGTH_MODES,
                   help="source video vs driving video length mismatch")
    p.add_argument("--no-stitching", action="store_true")
    cli_common.add_blend_args(p)


def run(args) -> int:
    roots = cli_common.roots(args)
    device, dtype = cli_common.device_dtype(args)
    renderer = models.load_liveportrait(args.layout, roots, args.download, device, dtype)
    detector = source_ops.make_detector("mediapipe", roots, args.download)
    frames, fps, _, _ = cli_common.read_source(args.source, args.max_frames)
    box = source_ops.parse_box(args.manual_box)
    source = source_ops.register_source(frames, fps, detector, renderer, manual_box=box,
                                        progress=cli_common.progress("source"),
                                        check_interrupt=runtime.check_interrupt)
    drv_frames, drv_fps, audio, rate = cli_common.read_source(args.driving)
    motion, _ = animate.driving_motion(
        drv_frames, drv_fps, len(source), detector, renderer, args.length, args.motion == "relative",
        args.driving_option == "expression-friendly", args.multiplier,
        progress=cli_common.progress("driving"), check_interrupt=runtime.check_interrupt)
    n_out = len(motion)
    keypoints = animate.keypoints_for(source, motion, renderer, stitching=not args.no_stitching)
    if audio is not None:  # the driving video's sound, cut to the rendered length
        from ..core.audio import fit_length

        audio = fit_length(audio, int(round(n_out / drv_fps * rate)))
    render_video.write(args.out, source, keypoints, renderer, audio, rate, args.blend, args.region,
                       args.alpha, args.feather, "liveportrait", args.color_match, args.crf, args.preset,
                       progress=cli_common.progress("render"), check_interrupt=runtime.check_interrupt)
    print(args.out)
    return 0
