"""CPU (or GPU) timing of MuseTalk's per-frame work in the avatar path: UNet + VAE decode.

Full-size networks with random weights (timing does not depend on the values).
Usage: python bench/bench_musetalk.py [--batch 1 8] [--repeats 2] [--device cpu] [--fp16]
Prints ms/frame per batch size, with the torch version and thread count.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from pack import import_pack

def _package():
    import_pack()
    from talking_head.pipelines.musetalk import latents, models

    return latents, models


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    L, M = _package()
    from diffusers import AutoencoderKL, UNet2DConditionModel

    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32
    torch.manual_seed(0)  # benchmark-only random weights; values do not affect timing
    t0 = time.perf_counter()
    unet = M.place_module(UNet2DConditionModel(**M.UNET_CONFIG).eval(), device, dtype)
    vae = M.place_module(AutoencoderKL(**M.VAE_CONFIG).eval(), device, dtype)
    print(f"built full-size UNet + VAE in {time.perf_counter() - t0:.1f} s")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, {dtype}")
    gen = torch.Generator().manual_seed(1)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for b in args.batch:
        lat = torch.randn(b, 8, 32, 32, generator=gen)
        audio = torch.randn(b, 50, 384, generator=gen)
        unet_t, dec_t = [], []
        for i in range(args.warmup + args.repeats):
            sync()
            a = time.perf_counter()
            pred = L.unet_step(unet, lat, audio)
            sync()
            m = time.perf_counter()
            L.decode_latents(vae, pred)
            sync()
            e = time.perf_counter()
            if i >= args.warmup:
                unet_t.append(m - a)
                dec_t.append(e - m)
        u, d = statistics.median(unet_t), statistics.median(dec_t)
        print(f"batch {b}: UNet {1000 * u / b:.0f} ms/frame, decode {1000 * d / b:.0f} ms/frame, "
              f"UNet+decode {1000 * (u + d) / b:.0f} ms/frame "
              f"(median of {args.repeats}, {args.warmup} warm-up)")


if __name__ == "__main__":
    main()
