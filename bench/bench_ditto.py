"""Ditto audio -> motion timings: online first-frame latency and offline throughput.

    python bench/bench_ditto.py [--device cpu|cuda] [--sizes tiny full] [--seconds 10]
                                [--online-steps 10] [--offline-steps 50] [--threads N]

LMDM with seeded random weights (timing does not depend on the values) and random
HuBERT-sized features: the 1.46 GB HuBERT ONNX is not part of these timings unless
``--hubert PATH`` is given, which adds the 4 chunk encodings frame 0 needs to the online
first-frame compute time (HuBERT adds the same per-chunk cost to both modes).

Online first-frame latency = audio look-ahead the algorithm needs before frame 0 can be
final (measured by feeding 40 ms pieces of audio through the streaming chunker) + the
compute time from the moment that audio is available (the first two LMDM windows).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pack import import_pack



def _import_pack():
    import_pack()
    import talking_head.pipelines.ditto as ditto
    from talking_head.pipelines.core.types import AudioFeatures, ModelBundle

    return ditto, AudioFeatures, ModelBundle


def make_bundle(ditto, ModelBundle, size: str, device: str):
    from talking_head.pipelines.ditto.lmdm import TINY   # the package exports OFFICIAL only

    cfg = TINY if size == "tiny" else ditto.OFFICIAL
    g = torch.Generator().manual_seed(0)
    model = ditto.MotionDecoder(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5 if p.ndim > 1 else 0.05))
    model = model.to(device).eval()
    return ModelBundle("ditto", {"lmdm": model, "cfg": ditto.DittoConfig(), "hubert": None,
                                 "stitch": None}, torch.device(device), torch.float32)


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def lookahead_ms(ditto, bundle, steps: int) -> float:
    """Audio (ms) pushed before the first motion row appears, with a trivial encoder."""
    enc = lambda chunk: np.tile(chunk[:20, None], (1, 1024)).astype(np.float32)  # noqa: E731
    b = type(bundle)("ditto", {**bundle.nets, "hubert": enc}, bundle.device, bundle.dtype)
    stream = ditto.MotionStream(b, ditto.ConditionSource(_src_info(), np.ones((1, 2)), np.zeros((1, 6))),
                                _sampling(ditto, steps), silence=np.zeros((70, 1024), np.float32))
    fed = 0
    for _ in range(200):
        rows = stream.push_audio(np.zeros(640, np.float32))
        fed += 640
        if len(rows):
            return fed / 16.0
    return float("nan")


def _sampling(ditto, steps: int, online=None):
    """Sampling settings conditioned on the bench's own source (no cfg reference face)."""
    return ditto.DittoSampling(steps=steps, online=online, use_reference_identity=False)


def _src_info():
    rng = np.random.default_rng(0)
    return {"pitch": rng.standard_normal((1, 66)), "yaw": rng.standard_normal((1, 66)),
            "roll": rng.standard_normal((1, 66)), "t": rng.standard_normal((1, 3)) * 0.02,
            "exp": rng.standard_normal((1, 63)) * 0.02, "scale": np.ones((1, 1)),
            "kp": rng.standard_normal((1, 63)) * 0.25}


def bench(size: str, device: str, seconds: float, online_steps: int, offline_steps: int,
          hubert=None) -> None:
    ditto, AudioFeatures, ModelBundle = _import_pack()
    bundle = make_bundle(ditto, ModelBundle, size, device)
    src = ditto.ConditionSource(_src_info(), np.ones((1, 2)), np.zeros((1, 6)))
    n = int(np.ceil(seconds * 25))
    feats = np.random.default_rng(1).standard_normal((n, 1024)).astype(np.float32)
    sil = np.zeros((70, 1024), np.float32)

    # warm-up (allocator, kernels)
    ditto.generate_motion(bundle, AudioFeatures(torch.from_numpy(feats[:40]), "hubert", 25, 1.6),
                          src, _sampling(ditto, 2, online=True), silence=sil)

    look = lookahead_ms(ditto, bundle, online_steps)
    hub_s = 0.0
    if hubert:
        enc = ditto.HubertOnnx(hubert, device)
        enc(np.zeros(6480, np.float32))             # session start-up is not latency
        t0 = time.perf_counter()
        for _ in range(4):                          # frame 0 needs chunks 0..3
            enc(np.zeros(6480, np.float32))
        hub_s = time.perf_counter() - t0
    stream = ditto.MotionStream(bundle, src, _sampling(ditto, online_steps), silence=sil)
    t0 = time.perf_counter()
    first = None
    fed = 0
    per_window = []
    while fed < n:
        t1 = time.perf_counter()
        rows = stream.push_features(feats[fed:fed + 10])
        _sync(device)
        fed += 10
        if len(rows):
            per_window.append(time.perf_counter() - t1)
            if first is None:
                first = time.perf_counter() - t0
    stream.finish()
    first += hub_s
    window_ms = 1000 * float(np.median(per_window[1:] or per_window))
    print(f"{size:5s} {device:5s} online  S={online_steps:<3d} look-ahead {look:6.0f} ms + compute "
          f"{first * 1000:7.1f} ms = first frame {look + first * 1000:7.0f} ms; steady "
          f"{window_ms:6.1f} ms per 10 frames (real-time factor {window_ms / 400:.3f})")

    feat_obj = AudioFeatures(torch.from_numpy(feats), "hubert", 25.0, n / 25)
    _sync(device)
    t0 = time.perf_counter()
    raw = ditto.generate_motion(bundle, feat_obj, src, _sampling(ditto, offline_steps, online=False))
    _sync(device)
    dt = time.perf_counter() - t0
    print(f"{size:5s} {device:5s} offline S={offline_steps:<3d} {len(raw)} frames in {dt:6.2f} s = "
          f"{len(raw) / dt:8.1f} frames/s (real-time factor {dt / (n / 25):.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--online-steps", type=int, default=10)
    ap.add_argument("--offline-steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--hubert", default=None, help="hubert_streaming_fix_kv.onnx (optional)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for size in args.sizes:
        bench(size, args.device, args.seconds, args.online_steps, args.offline_steps, args.hubert)


if __name__ == "__main__":
    main()
