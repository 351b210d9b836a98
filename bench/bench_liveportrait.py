"""Milliseconds per frame of LivePortrait's F, M, W and G through the pack's batched API.

    python bench/bench_liveportrait.py [--device cpu|cuda|all] [--batches 1 8]
                                       [--repeats 2] [--dtype fp16] [--nets F M W G]

Full-size networks with seeded random weights (timing does not depend on the values);
each row is the minimum and median over ``--repeats`` timed calls after one warm-up call
(the first call at a new batch size pays for oneDNN/cuDNN set-up and fresh memory).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from pack import import_pack, seeded_init_



def _import_pack():
    import_pack()
    from talking_head.pipelines.liveportrait import loader, render
    from talking_head.pipelines.core.types import ModelBundle

    return loader, render, ModelBundle


def seeded_nets(loader, seed: int = 0) -> dict:
    return seeded_init_(loader.build_networks(), seed)


def bench(device: str, dtype: torch.dtype, batches, repeats: int, which) -> None:
    loader, render, ModelBundle = _import_pack()
    nets = seeded_nets(loader)
    layout = loader.default_channels_last(device)
    for role in ("appearance", "motion", "warping", "decoder"):
        nets[role].to(device)
        if layout.get(role):
            nets[role].to(memory_format=torch.channels_last)
    bundle = ModelBundle("liveportrait", nets, torch.device(device),
                         loader.resolve_dtype(device, dtype), extra={"channels_last": layout})
    g = torch.Generator().manual_seed(1)
    kp = (torch.rand(21, 3, generator=g) - 0.5) * 0.6
    f_s = torch.randn(1, 32, 16, 64, 64, generator=g).half()
    print(f"\n== device {device}, compute dtype {bundle.dtype}, channels-last {layout}")
    print(f"{'net':<4}{'batch':>6}{'ms/frame min':>15}{'median':>10}{'runs':>6}")
    for b in batches:
        imgs = torch.rand(b, 3, 256, 256, generator=g)
        x_s = kp.expand(b, 21, 3).contiguous()
        x_d = x_s + 0.02 * torch.randn(b, 21, 3, generator=g)
        warped = torch.randn(b, 256, 64, 64, generator=g).half()
        calls = {
            "F": lambda: render.extract_appearance(bundle, imgs, batch_size=b),
            "M": lambda: render.extract_motion(bundle, imgs, batch_size=b),
            "W": lambda: render.warp_features(bundle, f_s, x_s, x_d, batch_size=b),
            "G": lambda: render.decode(bundle, warped, batch_size=b),
        }
        for name in which:
            times = []
            for i in range(repeats + 1):
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                calls[name]()
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) * 1000 / b)
            times = times[1:]
            print(f"{name:<4}{b:>6}{min(times):>15.1f}{statistics.median(times):>10.1f}{len(times):>6}",
                  flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cpu, plus cuda if present)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="fp16", choices=["fp32", "fp16", "bf16"],
                    help="compute dtype on CUDA (the CPU always runs fp32)")
    ap.add_argument("--nets", nargs="+", default=["F", "M", "W", "G"], choices=["F", "M", "W", "G"])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, CUDA {'yes: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no'}")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("\n== cuda: not available")
            continue
        bench(device, dtype, args.batches, args.repeats, args.nets)


if __name__ == "__main__":
    main()
