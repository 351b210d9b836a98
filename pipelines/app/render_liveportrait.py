"""LivePortrait video driving: a driving video moves a portrait (image or video).

    python -m pipelines render liveportrait --source face.png --driving drive.mp4 --out out.mp4
"""
from __future__ import annotations

from ..core import choices
from . import common


def add_arguments(p) -> None:
    common.add_source_args(p)
    p.add_argument("--driving", required=True, help="driving video (its audio goes into the output)")
    p.add_argument("--layout", default="auto", choices=choices.LP_LAYOUTS)
    p.add_argument("--motion", default="relative", choices=("relative", "absolute"))
    p.add_argument("--driving-option", default="expression-friendly",
                   choices=("expression-friendly", "pose-friendly"))
    p.add_argument("--multiplier", type=float, default=1.0)
    p.add_argument("--length", default="cycle", choices=choices.LENGTH_MODES,
                   help="source video vs driving video length mismatch")
    p.add_argument("--no-stitching", action="store_true")
    common.add_blend_args(p)


def render(args) -> tuple:
    """Render one clip as ``args`` say: (output path, frames)."""
    from ..core.motion import DrivingSpec
    from ..liveportrait.drive import StitchOptions, keypoints_for
    from ..liveportrait.video import stream_video
    from . import models, steps

    spec = common.blend_spec(args, "liveportrait")
    roots, ctx = common.roots(args), common.context(args)
    if not args.download:
        models.require([("aux", "mediapipe")], roots, args.layout)
    renderer = models.load_liveportrait(args.layout, roots, args.download, ctx)
    detector = models.detector("mediapipe", roots, args.download)
    source = common.register_source(args, detector, renderer, ctx)
    drv_frames, drv_fps, audio = common.read_source(args.driving)
    options = steps.DrivingOptions(args.length, DrivingSpec(
        args.motion == "relative", args.driving_option == "expression-friendly", args.multiplier))
    motion, _ = steps.driving_motion(drv_frames, drv_fps, len(source), detector, renderer, options,
                                     common.stage(args, ctx, "driving"))
    keypoints = keypoints_for(source, motion, renderer, StitchOptions(stitching=not args.no_stitching))
    frames_out = stream_video(renderer, source, keypoints, spec,
                              common.stage(args, ctx, "render"))
    # the driving video's sound, cut to the rendered length
    return common.write(args, frames_out, drv_fps, len(keypoints), audio, ctx)


def run(args) -> int:
    print(render(args)[0])
    return 0
