"""Interrupt latency at full model size on the CPU: from a stop request to the exception.

    python bench/bench_interrupt.py [--tries 5] [--cases lp ditto musetalk] [--threads N]
                                    [--lp-batch 4] [--ditto-steps 50] [--musetalk-batch 8]

A second thread sets the standalone stop flag (``runtime.request_interrupt``, what Ctrl-C
and the ComfyUI bridge amount to) at a random moment inside the call (uniform over 5-80%
of its uninterrupted time; a try that ends before the stop is repeated); the latency is
the time from that request to the ``InterruptedRender`` that ends the call. The three
calls, with what checks the flag:
* lp: LivePortrait warp + decode of a batch of frames (``render.warp_features``,
  ``render.decode``): ``ctx.inside`` checks before every submodule of W and G;
* ditto: one Ditto LMDM sampling window (``DDIMSampler.sample``, as a render runs it):
  a check before every diffusion step;
* musetalk: the MuseTalk UNet step on a batch (``latents.unet_step`` inside
  ``ctx.inside(unet)``, as ``avatar.generate`` runs it).
Full-size networks with seeded or default random weights (timing does not depend on the
values). For comparison it prints the uninterrupted time of each call with the checks
installed and without them (a context without an interrupt installs no hooks), how many
checks one call makes and the gaps between them (the start and the end of the call end
gaps too): a stop waits for the next check, so the largest gap bounds the latency. The
first call of each case is a warm-up (oneDNN set-up). On a 2-core machine that other
processes load, ``--threads 1`` gives steadier figures (with 2 threads, every parallel
region waits for whichever thread the scheduler has parked).
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import threading
import time

import torch

from pack import import_pack, seeded_init_


def _runtime():
    from talking_head.pipelines.core import runtime

    return runtime


# ---------------------------------------------------------------------------------------
# the three calls: each builder returns call(ctx)


def liveportrait_call(batch: int):
    """W then G on ``batch`` frames, as the renderer runs them for one batch."""
    from talking_head.pipelines.core.types import ModelBundle
    from talking_head.pipelines.liveportrait import loader, render

    nets = seeded_init_(loader.build_networks())
    layout = loader.default_channels_last("cpu")
    for role, last in layout.items():
        if last:
            nets[role].to(memory_format=torch.channels_last)
    bundle = ModelBundle("liveportrait", nets, torch.device("cpu"), torch.float32,
                         extra={"channels_last": layout})
    g = torch.Generator().manual_seed(1)
    f_s = torch.randn(1, 32, 16, 64, 64, generator=g).half()
    x_s = ((torch.rand(21, 3, generator=g) - 0.5) * 0.6).expand(batch, 21, 3).contiguous()
    x_d = x_s + 0.02 * torch.randn(batch, 21, 3, generator=g)

    def call(ctx):
        warped = render.warp_features(bundle, f_s, x_s, x_d, ctx, batch_size=batch)
        render.decode(bundle, warped, ctx, batch_size=batch)

    return call


def ditto_call(steps: int):
    """One LMDM window (80 frames) of ``steps`` DDIM steps with classifier-free guidance."""
    from talking_head.pipelines.ditto import OFFICIAL, DDIMSampler, MotionDecoder, NoiseSource

    model = seeded_init_(MotionDecoder(OFFICIAL)).eval()
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    cond_frame = 0.1 * torch.randn(1, cfg.nfeats, generator=g)
    cond = torch.randn(1, cfg.seq_len, cfg.cond_dim, generator=g)
    sampler = DDIMSampler(model, steps)

    def call(ctx):
        noise = NoiseSource((cfg.seq_len, cfg.nfeats), steps, seed=0)
        with ctx.autocast():
            sampler.sample(cond_frame, cond, noise, check=ctx.check)

    return call


def musetalk_call(batch: int):
    """The UNet forward on ``batch`` frames under ``ctx.inside`` (the VAE decode, which
    follows it in avatar.generate, is left out)."""
    from diffusers import UNet2DConditionModel

    from talking_head.pipelines.musetalk import latents, models

    torch.manual_seed(0)       # PyTorch's default init, reproducibly
    unet = models.place_module(UNet2DConditionModel(**models.UNET_CONFIG).eval(),
                               torch.device("cpu"), torch.float32)
    g = torch.Generator().manual_seed(1)
    lat = torch.randn(batch, 8, 32, 32, generator=g)
    audio = torch.randn(batch, 50, 384, generator=g)

    def call(ctx):
        with ctx.inside(unet):
            latents.unet_step(unet, lat, audio)

    return call


# ---------------------------------------------------------------------------------------
# measuring


def recording_context(runtime):
    """A context with the standalone stop check that also notes when each check ran: the
    gaps between checks bound the latency (a stop waits for the next check)."""
    stamps = []

    def check():
        stamps.append(time.perf_counter())
        runtime.check_interrupt()

    return runtime.RunContext(interrupt=check), stamps


def timed(call, ctx) -> float:
    start = time.perf_counter()
    call(ctx)
    return time.perf_counter() - start


def stop_latency(runtime, call, delay: float):
    """Seconds from the stop request (made ``delay`` s into the call) to the exception;
    None when the call ended first (the flag is then cleared for the next try)."""
    stamp = {}

    def stop():
        stamp["set"] = time.perf_counter()
        runtime.request_interrupt()

    timer = threading.Timer(delay, stop)
    timer.start()
    try:
        call(runtime.RunContext(interrupt=runtime.check_interrupt))
    except runtime.InterruptedRender:
        return time.perf_counter() - stamp["set"]
    finally:
        timer.cancel()
        timer.join()
    try:
        runtime.check_interrupt()      # a request that came just after the end
    except runtime.InterruptedRender:
        pass
    return None


def uninterrupted(runtime, call) -> tuple:
    """(seconds with the checks, seconds without, gaps between checks in ms), after a
    warm-up call."""
    call(runtime.RunContext(interrupt=None))
    ctx, stamps = recording_context(runtime)
    start = time.perf_counter()
    with_checks = timed(call, ctx)
    gaps = [1000 * (b - a) for a, b in zip([start] + stamps, stamps + [start + with_checks])]
    return with_checks, timed(call, runtime.RunContext(interrupt=None)), gaps


def latencies(runtime, call, tries: int, span: float, rng: random.Random) -> tuple:
    """(``tries`` stop latencies in ms, how many more tries ended before their stop)."""
    lat, missed = [], 0
    while len(lat) < tries and missed < tries:
        got = stop_latency(runtime, call, rng.uniform(0.05, 0.8) * span)
        if got is None:
            missed += 1
        else:
            lat.append(1000 * got)
    return lat, missed


def measure(name: str, call, tries: int, rng: random.Random) -> None:
    runtime = _runtime()
    with_checks, without, gaps = uninterrupted(runtime, call)
    # the stop moment is drawn within the faster run: the speed varies with the load
    ms, missed = latencies(runtime, call, tries, min(with_checks, without), rng)
    stops = (f"median {statistics.median(ms):7.1f} ms, max {max(ms):7.1f} ms over {len(ms)} tries"
             if ms else "no try was stopped")
    print(f"{name}\n   uninterrupted {with_checks:6.2f} s with the checks, {without:6.2f} s "
          f"without; {len(gaps) - 1} checks per call, gaps between them median "
          f"{statistics.median(gaps):.1f} ms, max {max(gaps):.1f} ms\n   stop -> exception: "
          f"{stops}" + (f" ({missed} more ended before the stop)" if missed else ""), flush=True)


CASES = {   # name -> (title, call) for the command-line arguments
    "lp": lambda a: (f"(a) LivePortrait warp + decode, {a.lp_batch} frames",
                     liveportrait_call(a.lp_batch)),
    "ditto": lambda a: (f"(b) Ditto LMDM sampling window, {a.ditto_steps} DDIM steps",
                        ditto_call(a.ditto_steps)),
    "musetalk": lambda a: (f"(c) MuseTalk UNet step, batch {a.musetalk_batch}",
                           musetalk_call(a.musetalk_batch)),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tries", type=int, default=5)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: as is)")
    ap.add_argument("--lp-batch", type=int, default=4)
    ap.add_argument("--ditto-steps", type=int, default=50)
    ap.add_argument("--musetalk-batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="of the random stop moments")
    args = ap.parse_args(argv)
    import_pack()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rng = random.Random(args.seed)
    for case in args.cases:
        name, call = CASES[case](args)
        measure(name, call, args.tries, rng)
        del call
        gc.collect()                   # one full-size model in memory at a time
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
