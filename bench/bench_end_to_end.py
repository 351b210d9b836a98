"""End-to-end frames/s of ``render ditto`` at full size on the CPU, this checkout against
an earlier commit, and the render loop with and without stage overlap.

1. The command line, fixture photo + the first ``--seconds`` of the fixture speech, full
   network sizes (random weights; the HuBERT ONNX is a light stand-in, so audio encoding
   costs nothing here), in a fresh process each: this checkout, then ``--before`` (a git
   revision, checked out into a temporary worktree). Prints wall time and frames/s.
2. ``liveportrait.video.stream_video`` on the same source, full-size renderer: the paste
   of chunk k run in a helper thread while chunk k+1 is warped and decoded (overlap) or
   after it (no overlap), same frames. Prints frames/s of each.

    python bench/bench_end_to_end.py [--seconds 1.0] [--before 7bcf942] [--threads 2]
"""
import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from pack import ROOT, fixture, import_pack, write_models


def speech_clip(folder: str, seconds: float) -> str:
    from talking_head.pipelines.core import media

    wav = media.read_audio(fixture("speech_16k.wav"))[:int(seconds * 16000)]
    path = os.path.join(folder, "speech.wav")
    media.write_audio(path, wav, 16000)
    return path


def cli_run(checkout: str, models: str, audio: str, out: str, threads: int) -> float:
    """Wall seconds of one ``python -m pipelines render ditto`` in ``checkout``."""
    env = dict(os.environ, TALKING_HEAD_MODELS=models, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=checkout)
    cmd = [sys.executable, "-m", "pipelines", "render", "ditto", "--source", fixture("astronaut.png"),
           "--audio", audio, "--out", out, "--preset", "ultrafast"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"render failed in {checkout}:\n{proc.stderr[-2000:]}")
    return wall


def worktree(rev: str, folder: str) -> str:
    path = os.path.join(folder, "before")
    subprocess.run(["git", "worktree", "add", "--detach", path, rev], cwd=ROOT, check=True,
                   capture_output=True)
    return path


def overlap_figures(models: str, frames: int, threads: int) -> dict:
    """frames/s of stream_video with and without overlap, same keypoints (a nodding head)."""
    import torch

    from talking_head.pipelines.app import models as cache, steps
    from talking_head.pipelines.core import media
    from talking_head.pipelines.core.motion import Motion
    from talking_head.pipelines.liveportrait.drive import keypoints_for
    from talking_head.pipelines.liveportrait.video import stream_video

    torch.set_num_threads(threads)
    os.environ["TALKING_HEAD_MODELS"] = models
    renderer = cache.load_liveportrait("ditto", None, False)
    detector = cache.detector("mediapipe", None, False)
    source = steps.register(media.read_image(fixture("astronaut.png"))[None], 25.0, detector, renderer)
    info = source.motion
    n = frames
    nod = torch.linspace(0, 6, n)
    from talking_head.pipelines.expression.motion_bridge import source_params

    p = source_params(info)
    motion = Motion(scale=p.scale.expand(n, 1), pitch=p.pitch.expand(n) + nod, yaw=p.yaw.expand(n),
                    roll=p.roll.expand(n), t=p.t.expand(n, 3), exp=p.exp.expand(n, 21, 3), fps=25.0,
                    source_index=torch.zeros(n, dtype=torch.long), kind="absolute", origin="bench")
    keypoints = keypoints_for(source, motion, renderer)
    out = {}
    for overlap in (False, True, False, True):
        start = time.perf_counter()
        for _ in stream_video(renderer, source, keypoints, chunk=4, overlap=overlap):
            pass
        out.setdefault(overlap, []).append(n / (time.perf_counter() - start))
    return {k: max(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--before", default="7bcf942", help="git revision to compare with")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--overlap-frames", type=int, default=8)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    import_pack()
    folder = tempfile.mkdtemp(prefix="ths-e2e-")
    try:
        models = write_models(os.path.join(folder, "models"), ("aux", "ditto"), full=True)
        frames = math.ceil(args.seconds * 25)
        print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads, {frames} frames, full sizes")
        if not args.skip_cli:
            audio = speech_clip(folder, args.seconds)
            before = worktree(args.before, folder)
            for name, checkout in (("this checkout", ROOT), (f"before ({args.before})", before),
                                   ("this checkout", ROOT)):
                wall = cli_run(checkout, models, audio, os.path.join(folder, "out.mp4"), args.threads)
                print(f"render ditto, {name:22s} {wall:7.1f} s wall  {frames / wall:6.3f} frames/s "
                      "(loading and registration included)")
        fps = overlap_figures(models, args.overlap_frames, args.threads)
        print(f"stream_video, paste after render      {fps[False]:6.3f} frames/s")
        print(f"stream_video, paste overlapping render {fps[True]:6.3f} frames/s")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", os.path.join(folder, "before")],
                       cwd=ROOT, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
