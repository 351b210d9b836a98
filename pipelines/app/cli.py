"""Command line over ``pipelines/`` (no ComfyUI needed).

    python -m pipelines doctor
    python -m pipelines download ditto|liveportrait|musetalk|aux|all [--group G]
    python -m pipelines render ditto --source face.png --audio speech.wav --out out.mp4
    python -m pipelines render musetalk --source clip.mp4 --audio speech.wav --out out.mp4
    python -m pipelines render liveportrait --source face.png --driving drive.mp4 --out out.mp4

Arguments are declared without importing torch or any model code, so ``--help`` and a
wrong choice answer at once; the heavy imports happen when a command runs.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..core import choices

RENDERERS = {  # family -> module of this package with add_arguments(parser) and run(args)
    "ditto": "render_ditto",
    "musetalk": "render_musetalk",
    "liveportrait": "render_liveportrait",
    "joyvasa": "render_joyvasa",
}
FAMILIES = ("ditto", "liveportrait", "musetalk", "joyvasa", "aux")


def _renderer(family: str):
    return importlib.import_module("." + RENDERERS[family], __package__)


# the registry groups a family needs to render (its own files and the face models)
REQUIRED = {"ditto": [("ditto", "pytorch"), ("aux", "mediapipe")],
            "liveportrait": [("liveportrait", "official"), ("aux", "mediapipe")],
            "musetalk": [("musetalk", "v15"), ("aux", "mediapipe")],
            "joyvasa": [("joyvasa", "hubert_chinese"), ("aux", "mediapipe")]}


def cmd_doctor(args) -> int:
    """What this machine has: ffmpeg, device, modules, and per family whether its files are
    installed. Exits 1 when something a chosen family (default: all) needs is missing."""
    import subprocess

    import torch

    from ..core import media, runtime, weights
    from ..core.errors import MissingWeightsError, TalkingHeadError
    from . import models

    ok = True
    print(f"python  {sys.version.split()[0]}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    dev = runtime.pick_device("auto")
    print(f"device  {dev}" + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""))
    try:
        exe = media.ffmpeg_exe()
        enc = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
        have = [e for e in ("libx264", "h264_nvenc", "aac") if f" {e} " in enc]
        print(f"ffmpeg  {exe}\n        encoders: {', '.join(have)}")
        ok &= "libx264" in have and "aac" in have
    except TalkingHeadError as exc:
        print(f"ffmpeg  MISSING: {exc}")
        ok = False
    for mod in ("mediapipe", "onnxruntime", "diffusers", "transformers", "safetensors", "huggingface_hub", "cv2"):
        try:
            m = importlib.import_module(mod)
            print(f"module  {mod:16s} {getattr(m, '__version__', 'ok')}")
        except Exception as exc:
            print(f"module  {mod:16s} MISSING ({type(exc).__name__})")
    print(f"models  {weights.default_models_root()}")
    for entry, path in weights.status():
        mark = "ok " if path else ("-- " if entry.optional else "MISSING")
        print(f"  {mark:7s} {entry.family:12s} {entry.group:11s} {entry.local}")
    for family in args.families or tuple(REQUIRED):
        groups = [g for g in REQUIRED[family] if g[0] != "liveportrait"]
        try:   # LivePortrait's renderer: any complete layout will do
            models.require(groups, None, "auto" if family in ("liveportrait", "joyvasa") else None)
            print(f"ready   {family}")
        except MissingWeightsError as exc:
            ok = False
            print(f"NOT READY {family}: {str(exc).splitlines()[-1]}")
    return 0 if ok else 1


def cmd_download(args) -> int:
    from ..core import weights

    families = weights.FAMILIES if args.family == "all" else (args.family,)
    for family in families:
        for fam in (family, *weights.NEEDS[family]):
            grps = [args.group] if args.group and fam == family else (
                ["pytorch"] if fam == "ditto" else ["official"] if fam == "liveportrait"
                else ["v15"] if fam == "musetalk" else ["hubert_chinese"] if fam == "joyvasa"
                else ["mediapipe"])
            for g in grps:
                paths = weights.resolve(fam, g, download=True, progress=print)
                for role, p in paths.items():
                    print(f"  {fam}/{g}/{role}: {p}")
    return 0


def cmd_batch(args) -> int:
    from .batch import BatchOptions, run_batch

    if args.workers < 1:
        raise SystemExit("--workers must be 1 or more")
    options = BatchOptions(args.workers, args.gpus_per_worker, args.address, args.resume, args.local)
    defaults = {"models": args.models and os.path.abspath(args.models), "device": args.device,
                "dtype": args.dtype}
    try:
        results = run_batch(args.jobs, args.out, options, defaults)
    except KeyboardInterrupt:      # run_batch said what was done and how to resume
        return 130
    return 0 if all(r.status == "ok" for r in results) else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m pipelines",
                                  description="Talking-head video without ComfyUI.")
    sub = top.add_subparsers(dest="command", required=True)
    d = sub.add_parser("doctor", help="check ffmpeg, torch device and which weights are present "
                                      "(exit 1 when a family cannot render)")
    d.add_argument("families", nargs="*", choices=tuple(REQUIRED), metavar="family",
                   help="only these families (ditto, liveportrait, musetalk, joyvasa); default all")
    p = sub.add_parser("download", help="download a family's weights into the models folder")
    p.add_argument("family", choices=(*FAMILIES, "all"))
    p.add_argument("--group", help="file set within the family (e.g. official, safetensors)")
    b = sub.add_parser("batch", help="render every clip of a JSONL/CSV job file (on Ray when installed)")
    b.add_argument("jobs", help="JSONL or CSV file, one clip a line (see README: Batch rendering)")
    b.add_argument("--out", required=True, help="output folder (also gets results.jsonl)")
    b.add_argument("--workers", type=int, default=1, help="workers, each holding its models (default 1)")
    b.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per worker (0 = CPU workers)")
    b.add_argument("--address", default=None, help="an existing Ray cluster (default: a local one)")
    b.add_argument("--resume", action="store_true", help="skip jobs already rendered by an earlier run")
    b.add_argument("--local", action="store_true", help="run in this process even if Ray is installed")
    b.add_argument("--models", default=None, help="models root for every job")
    b.add_argument("--device", default=None, help="device for every job (default auto)")
    b.add_argument("--dtype", default=None, choices=choices.DTYPES, help="dtype for every job")
    r = sub.add_parser("render", help="render a talking-head video")
    rsub = r.add_subparsers(dest="family", required=True)
    for family in RENDERERS:
        module = _renderer(family)
        module.add_arguments(rsub.add_parser(family, help=module.__doc__.strip().splitlines()[0]))
    return top


def _stop_on_sigterm() -> None:
    """A SIGTERM (a process manager, `kill`) unwinds like Ctrl-C, so every temporary file
    of the render is removed on the way out."""
    import signal

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):   # not the main thread, or no such signal here
        pass


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from ..core.errors import TalkingHeadError
    from . import models

    _stop_on_sigterm()
    try:
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "download":
            return cmd_download(args)
        if args.command == "batch":
            return cmd_batch(args)
        return _renderer(args.family).run(args)
    except TalkingHeadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    finally:
        models.close_detectors()


if __name__ == "__main__":
    sys.exit(main())
