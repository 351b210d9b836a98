"""The production paste-back of a video source, this checkout against an earlier commit.

Usage: python bench/bench_paste_back.py [--previous-rev 41f1a73] [--frames 16]
       [--repeats 7] [--threads 1]

``composite.paste_back`` as a render calls it for one chunk of a video source (every
output frame with its own source frame and crop placement, the masks made per chunk by
``ChunkMasks``, the default blend: the official crop template of Ditto or LivePortrait),
at 512x512 and 1920x1080. The earlier commit is checked out into a temporary git
worktree and imported beside this checkout as a second package, so both run in one
process, timed round-robin (the order turning each round). Prints the median CPU time
per output frame of each and whether both give the same frames. With DITTO_CHECKOUT pointing at a checkout of
antgroup/ditto-talkinghead, also the official Cython ``PutBack`` on the same frames
(Ditto template only), each crop first scaled to 0..255 as Ditto's decoder does it
(the paste-back does that inside).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
from pack import ROOT, import_pack

SIZES = {"512x512": (512, 512, 486.0), "1920x1080": (1080, 1920, 700.0)}


def import_revision(rev: str, folder: str):
    """``rev`` of this repository checked out in ``folder``, imported as package
    ``talking_head_prev``; its composite module."""
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", folder, rev],
                   check=True)
    package = types.ModuleType("talking_head_prev")
    package.__path__ = [folder]
    sys.modules["talking_head_prev"] = package
    import talking_head_prev.pipelines.composite as composite
    return composite


def video_source(h: int, w: int, side: float, n: int, seed: int = 0):
    """n frames with the face turned and moved a little from one frame to the next."""
    import torch

    from talking_head.pipelines.core.types import Source

    rng = np.random.default_rng(seed)
    ctf = []
    for i in range(n):
        a, s = np.deg2rad(5.0 + i % 3), side / 512.0
        m = np.eye(3)
        m[:2, :2] = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        m[:2, 2] = np.array([w / 2 + 3 * (i % 3), h * 0.46 + 2 * (i % 3)]) - m[:2, :2] @ [256, 256]
        ctf.append(m)
    frames = torch.from_numpy(rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8))
    source = Source(frames=frames, fps=25.0, crops=torch.zeros(n, 8, 8, 3, dtype=torch.uint8),
                    crop_to_frame=torch.from_numpy(np.stack(ctf).astype(np.float32)),
                    landmarks=torch.zeros(n, 478, 2), landmark_scheme="mediapipe478",
                    face_found=torch.ones(n, dtype=torch.bool))
    crops = torch.from_numpy(rng.random((n, 512, 512, 3), dtype=np.float32))
    return source, crops


def timed(composite, source, crops, edge: str):
    """One chunk through ``composite.paste_back`` -> (CPU ms per frame, digest of frames)."""
    spec = composite.BlendSpec(crop_edge=edge)
    masks = composite.ChunkMasks(source, spec)
    start = time.process_time()
    out = composite.paste_back(source.frames, crops, source.crop_to_frame, masks, None, spec,
                               plans={})
    ms = (time.process_time() - start) * 1e3 / len(crops)
    return ms, hashlib.md5(out.tobytes()).hexdigest()


def official(checkout: str):
    """Ditto's Cython ``PutBack`` per frame over a chunk, or None (no checkout given, or
    it does not build)."""
    from bench_paste import official_putback

    putback = official_putback(checkout)
    if putback is None:
        return None

    def run(source, crops):
        frames, ctf = source.frames.numpy(), source.crop_to_frame.numpy()
        start = time.process_time()
        # as Ditto's Decoder hands its output over: clip(0, 1) * 255, float32, unrounded
        # (the paste-back here does that inside; Ditto's HWC transpose is left out)
        out = [putback(f, np.clip(c, 0, 1) * 255, m)
               for f, c, m in zip(frames, crops.numpy(), ctf)]
        return (time.process_time() - start) * 1e3 / len(out), np.stack(out)
    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--previous-rev", default="41f1a73")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import cv2
    import torch

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    import_pack()
    import talking_head.pipelines.composite as current

    folder = tempfile.mkdtemp(prefix="bench_paste_back_")
    try:
        previous = import_revision(args.previous_rev, os.path.join(folder, "checkout"))
        print(f"cv2 {cv2.__version__} ({cv2.getNumThreads()} threads), torch "
              f"{torch.__version__} ({torch.get_num_threads()} threads); {args.frames} frames "
              f"per chunk, median of {args.repeats} chunks; CPU ms per output frame")
        cython = official(os.environ.get("DITTO_CHECKOUT", ""))
        print(f"{'frame':10s} {'template':13s} {'this checkout':>14s} "
              f"{args.previous_rev:>14s}  same frames"
              + ("   Cython PutBack  max |Cython - this|" if cython else ""))
        for label, (h, w, side) in SIZES.items():
            source, crops = video_source(h, w, side, args.frames)
            for edge in ("ditto", "liveportrait"):
                runs = {"now": [], "prev": [], "cython": []}
                digests = set()
                official_out = None
                keys = ["now", "prev"] + (["cython"] if cython and edge == "ditto" else [])
                for r in range(args.repeats + 1):  # the first round warms up
                    # the order turns each round: whoever runs right after another reads
                    # the chunk's crops from a warmer cache
                    for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                        if key == "cython":
                            ms, official_out = cython(source, crops)
                        else:
                            ms, digest = timed(current if key == "now" else previous,
                                               source, crops, edge)
                            digests.add(digest)
                        runs[key].append(ms)
                now, prev = (statistics.median(runs[k][1:]) for k in ("now", "prev"))
                line = f"{label:10s} {edge:13s} {now:14.2f} {prev:14.2f}  {len(digests) == 1}"
                if official_out is not None:
                    ours = current.paste_back(source.frames, crops, source.crop_to_frame,
                                              current.ChunkMasks(source, current.BlendSpec(crop_edge=edge)),
                                              None, current.BlendSpec(crop_edge=edge), plans={})
                    diff = np.abs(official_out.astype(int) - np.asarray(ours)).max()
                    line += f"  {statistics.median(runs['cython'][1:]):14.2f}  {diff}"
                print(line)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force",
                        os.path.join(folder, "checkout")], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
