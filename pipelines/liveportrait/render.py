"""Batched, chunked inference through a loaded LivePortrait bundle.

Every function runs under ``torch.inference_mode``, processes ``batch_size`` frames at a
time on the bundle's device, and moves each chunk's result straight into a preallocated
CPU tensor, so device memory stays at one chunk and host memory at the returned frames.
Half precision (``bundle.dtype`` fp16/bf16 on a GPU) uses autocast over fp32 weights,
as the official code does; on the CPU everything runs in fp32.

Each function takes the run's :class:`~..core.runtime.RunContext`: ``ctx.check()`` runs
before every chunk (a stop request ends the loop within one chunk) and
``ctx.report(done, total)`` after it.
"""
from __future__ import annotations

import contextlib

import torch

from ..core.errors import ShapeError
from ..core.runtime import CPU, RunContext
from ..core.types import Keypoints, ModelBundle, MotionInfo, Source


def autocast(bundle: ModelBundle):
    if bundle.dtype == torch.float32 or bundle.device.type == "cpu":
        return contextlib.nullcontext()
    return torch.autocast(device_type=bundle.device.type, dtype=bundle.dtype)


def _chunks(n: int, batch_size: int, ctx: RunContext):
    """Yield slices of ``range(n)``; check for a stop before and report after each."""
    batch_size = max(1, int(batch_size))
    for start in range(0, n, batch_size):
        ctx.check()
        stop = min(n, start + batch_size)
        yield slice(start, stop)
        ctx.report(stop, n)


# W and G take this many frames per pass on the CPU: batching gains little there, and a
# stop request is honoured between layers, so the longest layer of one frame (the warp's
# 7x7x7 mask convolution, under a second at full size) bounds the wait, not four frames'.
CPU_FRAMES_PER_PASS = 1


def _frames_per_pass(bundle: ModelBundle, batch_size: int) -> int:
    return min(batch_size, CPU_FRAMES_PER_PASS) if bundle.device.type == "cpu" else batch_size


def _to_device(bundle: ModelBundle, x: torch.Tensor, role: str) -> torch.Tensor:
    x = x.to(bundle.device, torch.float32, non_blocking=True)
    if (bundle.extra.get("channels_last") or {}).get(role):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _to_cpu(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Cast on the device first (half the transfer for fp16), then copy to the host."""
    return x.to(dtype).contiguous().cpu() if x.device.type != "cpu" else x.to(dtype)


def _check_images(img: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(img, torch.Tensor) or img.dim() != 4 or img.shape[1] != 3 \
            or tuple(img.shape[2:]) != (256, 256) or img.shape[0] == 0:
        got = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise ShapeError(f"{what}: expected (B,3,256,256) RGB crops in 0..1, got {got}; "
                         "crop and resize the face to 256x256 first")
    return img


@torch.inference_mode()
def extract_appearance(bundle: ModelBundle, img256: torch.Tensor, ctx: RunContext = CPU,
                       batch_size: int = 8, out_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """F on (B,3,256,256) crops in 0..1 -> (B,32,16,64,64) on the CPU in ``out_dtype``."""
    img256 = _check_images(img256, "extract_appearance")
    net = bundle["appearance"]
    out = None
    for sl in _chunks(img256.shape[0], batch_size, ctx):
        with autocast(bundle), ctx.inside(net):
            f = net(_to_device(bundle, img256[sl].clamp(0, 1), "appearance"))
        if out is None:
            out = torch.empty((img256.shape[0],) + tuple(f.shape[1:]), dtype=out_dtype)
        out[sl] = _to_cpu(f, out_dtype)
    return out


@torch.inference_mode()
def extract_motion(bundle: ModelBundle, img256: torch.Tensor, ctx: RunContext = CPU,
                   batch_size: int = 16) -> MotionInfo:
    """M on (B,3,256,256) crops in 0..1 -> raw :class:`MotionInfo` (fp32, CPU)."""
    img256 = _check_images(img256, "extract_motion")
    net = bundle["motion"]
    parts = []
    for sl in _chunks(img256.shape[0], batch_size, ctx):
        with autocast(bundle), ctx.inside(net):
            res = net(_to_device(bundle, img256[sl].clamp(0, 1), "motion"))
        parts.append({k: _to_cpu(v, torch.float32) for k, v in res.items()})
    return MotionInfo(**{k: torch.cat([p[k] for p in parts]) for k in parts[0]})


def _source_rows(n_app: int, t: int, source_index) -> torch.Tensor:
    if source_index is not None:
        idx = torch.as_tensor(source_index, dtype=torch.long).reshape(-1)
        if idx.numel() != t:
            raise ShapeError(f"source_index has {idx.numel()} entries for {t} frames")
        if idx.numel() and (idx.min() < 0 or idx.max() >= n_app):
            raise ShapeError(f"source_index points outside the {n_app} appearance frames")
        return idx if n_app > 1 else torch.zeros(t, dtype=torch.long)
    if n_app in (1, t):
        return torch.zeros(t, dtype=torch.long) if n_app == 1 else torch.arange(t)
    raise ShapeError(f"{n_app} appearance frames for {t} keypoint frames: pass source_index")


@torch.inference_mode()
def warp_features(bundle: ModelBundle, f_s: torch.Tensor, x_s: torch.Tensor, x_d: torch.Tensor,
                  ctx: RunContext = CPU, batch_size: int = 4, source_index=None,
                  out_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """W per frame: f_s (N,32,16,64,64) with N = 1 or T (or any N with ``source_index``
    (T,)), x_s/x_d (T,21,3) -> warped features (T,256,64,64) on the CPU in ``out_dtype``."""
    t = x_d.shape[0]
    if x_s.shape != x_d.shape or x_d.dim() != 3:
        raise ShapeError(f"warp_features: x_s {tuple(x_s.shape)} and x_d {tuple(x_d.shape)} "
                         "must both be (T,21,3)")
    if f_s.dim() != 5:
        raise ShapeError(f"warp_features: f_s must be appearance features (N,32,16,64,64), "
                         f"got {tuple(f_s.shape)}")
    rows = _source_rows(f_s.shape[0], t, source_index)
    net = bundle["warping"]
    out = torch.empty((t, net.cfg.out_channels) + tuple(f_s.shape[-2:]), dtype=out_dtype)
    for sl in _chunks(t, _frames_per_pass(bundle, batch_size), ctx):
        feat = f_s[rows[sl]].to(bundle.device, torch.float32, non_blocking=True)
        with autocast(bundle), ctx.inside(net):
            res = net(feat, x_s[sl].to(bundle.device, torch.float32),
                      x_d[sl].to(bundle.device, torch.float32))
        out[sl] = _to_cpu(res["out"], out_dtype)
    return out


@torch.inference_mode()
def decode(bundle: ModelBundle, warped: torch.Tensor, ctx: RunContext = CPU,
           batch_size: int = 4) -> torch.Tensor:
    """G per frame: warped (T,256,64,64) -> images (T,512,512,3) float32 in 0..1 (CPU)."""
    if warped.dim() != 4:
        raise ShapeError(f"decode: expected warped features (T,C,64,64), got {tuple(warped.shape)}")
    net = bundle["decoder"]
    out = None
    for sl in _chunks(warped.shape[0], _frames_per_pass(bundle, batch_size), ctx):
        with autocast(bundle), ctx.inside(net):
            img = net(_to_device(bundle, warped[sl], "decoder"))
        img = _to_cpu(img.float().clamp_(0, 1).permute(0, 2, 3, 1), torch.float32)
        if out is None:
            out = torch.empty((warped.shape[0],) + tuple(img.shape[1:]), dtype=torch.float32)
        out[sl] = img
    return out


def render(bundle: ModelBundle, source: Source, keypoints: Keypoints, frames: slice,
           ctx: RunContext = CPU, batch_size: int = 4) -> torch.Tensor:
    """W then G for output ``frames`` of ``keypoints`` (warped features never kept):
    (t,512,512,3) float32 crops in 0..1 on the CPU."""
    if source.appearance is None:
        raise ShapeError("The SOURCE has no appearance features: connect the renderer models "
                         "to Face Register.")
    f_s = source.appearance
    rows = keypoints.source_index[frames] if f_s.shape[0] > 1 else None
    warped = warp_features(bundle, f_s, keypoints.x_s[frames], keypoints.x_d[frames],
                           ctx.with_progress(None), batch_size, rows, out_dtype=torch.float32)
    return decode(bundle, warped, ctx.with_progress(None), batch_size)
