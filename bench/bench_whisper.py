"""MuseTalk whisper features on the CPU: this checkout against the previous implementation.

Usage: python bench/bench_whisper.py [--repeats 7] [--threads N] [--rev cd31ffc]
       [--wav ../shared/fixtures/speech_16k.wav]

Runs ``musetalk.audio.whisper_features`` (log-mel, whisper-tiny encoder with all hidden
states, per-frame windows at 25 fps) on the fixture speech with a full-size
whisper-tiny encoder (PyTorch's default init, seeded: timing does not depend on the
values), for this checkout and for ``pipelines/musetalk/audio.py`` as it was at
``--rev`` (read with ``git show`` and executed as a sibling module of the pack, so its
relative imports resolve). The two run alternately; it prints the median and minimum
wall and CPU time of each, the speed-up, and the largest difference between their
features.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import wave

import numpy as np
import torch
from pack import import_pack, module_from_git

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TALKING_HEAD_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


def import_pipelines():
    """The checkout as package ``talking_head`` without its ComfyUI node modules."""
    import_pack()
    import talking_head.pipelines.musetalk.audio as audio
    return audio


def read_wav(path: str) -> torch.Tensor:
    with wave.open(path) as w:
        if w.getsampwidth() != 2 or w.getframerate() != 16000:
            raise SystemExit(f"{path}: expected 16-bit 16 kHz audio")
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, w.getnchannels())
    return torch.from_numpy(pcm.mean(axis=1).astype(np.float32) / 32768.0)


def whisper_bundle():
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from talking_head.pipelines.core.types import ModelBundle
    from talking_head.pipelines.musetalk.models import WHISPER_CONFIG, build_whisper

    torch.manual_seed(0)
    sd = WhisperEncoder(WhisperConfig(**WHISPER_CONFIG)).state_dict()
    return ModelBundle("musetalk", {"whisper": build_whisper(sd)}, torch.device("cpu"),
                       torch.float32)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: as is)")
    ap.add_argument("--rev", default="cd31ffc", help="git revision of the previous audio.py")
    ap.add_argument("--wav", default=os.path.join(SHARED, "fixtures", "speech_16k.wav"))
    ap.add_argument("--fps", type=float, default=25.0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    new = import_pipelines()
    old = module_from_git(args.rev, "pipelines/musetalk/audio.py",
                          "talking_head.pipelines.musetalk._bench_previous_audio")
    bundle = whisper_bundle()
    wav = read_wav(args.wav)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"{wav.numel() / 16000:.2f} s of audio at {args.fps:g} fps; previous = {args.rev}")

    runs = {"new": lambda: new.whisper_features(bundle, wav, args.fps),
            "previous": lambda: old.whisper_features(bundle, wav, args.fps)}
    feats = {k: f().features for k, f in runs.items()}  # warm-up, and the outputs
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, f in runs.items():  # alternate: both see the same machine load
            c, t = time.process_time(), time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t, time.process_time() - c))
    for k, ts in times.items():
        wall, cpu = [x[0] * 1e3 for x in ts], [x[1] * 1e3 for x in ts]
        print(f"{k:9s} wall median {statistics.median(wall):7.1f} ms (min {min(wall):7.1f}), "
              f"cpu median {statistics.median(cpu):7.1f} ms (min {min(cpu):7.1f})")
    med = {k: statistics.median(x[0] for x in ts) for k, ts in times.items()}
    low = {k: min(x[0] for x in ts) for k, ts in times.items()}
    diff = (feats["new"] - feats["previous"]).abs().max().item()
    print(f"speed-up (previous / new): median {med['previous'] / med['new']:.3f}x, "
          f"min {low['previous'] / low['new']:.3f}x; max |new - previous| = {diff:.2e} "
          f"(features std {feats['previous'].std().item():.3f})")


if __name__ == "__main__":
    main()
