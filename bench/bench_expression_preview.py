"""Seconds per Expression Edit preview: what moving one slider costs.

    python bench/bench_expression_preview.py [--device cpu|cuda] [--repeats 5] [--threads N]

ComfyUI re-runs only the Expression Edit node when a slider changes (Face Register and the
model loader are cached), and that node edits the motion and renders ONE frame: the source
crop, through the same Stitch -> Warp -> Decode as the full render. This times that node
call at LivePortrait's full network sizes with seeded random weights (speed does not depend
on the values), and its parts: the edit maths, stitching, warping, decoding, the PNG the
node shows. Each row is the minimum and median over ``--repeats`` calls after one warm-up.
On a busy machine ``--threads 1`` gives steadier figures (threads that wait on each other
for a core can make a 2-thread run several times slower than its best).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from pack import import_pack, seeded_init_


def _bundle(device: str):
    from talking_head.pipelines.core.types import ModelBundle
    from talking_head.pipelines.liveportrait import loader

    nets = seeded_init_(loader.build_networks(init=False), seed=0)
    layout = loader.default_channels_last(device)
    for role, net in nets.items():
        net.to(device)
        if layout.get(role):
            net.to(memory_format=torch.channels_last)
    return ModelBundle("liveportrait", nets, torch.device(device), torch.float32,
                       extra={"channels_last": layout})


def _motion_info(g: torch.Generator):
    """A plausible face's motion-extractor output: pose near frontal, real-sized keypoints."""
    from talking_head.pipelines.core.types import MotionInfo

    logits = torch.zeros(1, 66)
    logits[0, 32:34] = 4.0      # about 0 degrees (3·E[bin] − 97.5)
    return MotionInfo(pitch=logits.clone(), yaw=logits.clone(), roll=logits.clone(),
                      t=torch.randn(1, 3, generator=g) * 0.01,
                      exp=torch.randn(1, 21, 3, generator=g) * 0.01,
                      scale=torch.full((1, 1), 1.6), kp=torch.randn(1, 21, 3, generator=g) * 0.3)


def _source(bundle):
    """A registered one-frame SOURCE with real appearance features of the seeded F."""
    from talking_head.pipelines.core.types import Source
    from talking_head.pipelines.liveportrait import render

    g = torch.Generator().manual_seed(1)
    crop = (torch.rand(1, 512, 512, 3, generator=g) * 255).to(torch.uint8)
    small = torch.nn.functional.interpolate(crop.permute(0, 3, 1, 2).float() / 255, size=256,
                                            mode="area")
    appearance = render.extract_appearance(bundle, small)
    return Source(frames=crop.clone(), fps=25.0, crops=crop, crop_to_frame=torch.eye(3)[None].double(),
                  landmarks=torch.zeros(1, 478, 2), landmark_scheme="mediapipe478",
                  face_found=torch.ones(1, dtype=torch.bool), motion=_motion_info(g),
                  appearance=appearance)


def _time(fn, repeats: int, device: str) -> list:
    times = []
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's choice)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TALKING_HEAD_STANDALONE", "1")      # no ComfyUI in a bench
    if args.threads:
        torch.set_num_threads(args.threads)
    import_pack()
    from talking_head.nodes import expression_nodes as X
    from talking_head.pipelines.expression import Sliders
    from talking_head.pipelines.expression import edit as edit_face
    from talking_head.pipelines.expression.motion_bridge import (render_params, source_params,
                                                                 still_motion)
    from talking_head.pipelines.liveportrait import render
    from talking_head.pipelines.liveportrait.drive import StitchOptions, keypoints_for

    bundle = _bundle(args.device)
    source = _source(bundle)
    sliders = Sliders(smile=0.8, blink=-4.0, rotate_yaw=5.0)
    node = X.ExpressionEdit()

    def the_edit():
        result = edit_face(source_params(source.motion), sliders)
        return still_motion(render_params(result, "default"), torch.arange(1), 25.0)

    motion = the_edit()
    keypoints = keypoints_for(source, motion, bundle, StitchOptions())
    warped = render.warp_features(bundle, source.appearance, keypoints.x_s, keypoints.x_d,
                                  out_dtype=torch.float32)
    crop = render.decode(bundle, warped)[0]
    parts = {
        "whole node (what a slider change costs)": lambda: node.edit(source, bundle, smile=0.8,
                                                                     blink=-4.0, rotate_yaw=5.0),
        "  edit maths -> MOTION": the_edit,
        "  stitch (keypoints)": lambda: keypoints_for(source, motion, bundle, StitchOptions()),
        "  warp W (1 frame)": lambda: render.warp_features(bundle, source.appearance, keypoints.x_s,
                                                           keypoints.x_d, out_dtype=torch.float32),
        "  decode G (1 frame)": lambda: render.decode(bundle, warped),
        "  preview PNG": lambda: X.preview_file(crop, "bench"),
    }
    print(f"device {args.device}, fp32, torch {torch.__version__}, {torch.get_num_threads()} "
          f"CPU threads, full-size LivePortrait networks")
    print(f"{'part':<42}{'min s':>8}{'median s':>10}{'runs':>6}")
    for name, fn in parts.items():
        times = _time(fn, args.repeats, args.device)
        print(f"{name:<42}{min(times):>8.3f}{statistics.median(times):>10.3f}{len(times):>6}",
              flush=True)


if __name__ == "__main__":
    main()
