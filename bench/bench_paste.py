"""CPU paste-back timing: composite.paste against the paths it replaces, ms per frame.

Usage: python bench/bench_paste.py [--repeats 30] [--threads N] [--previous-rev cd31ffc]
       DITTO_CHECKOUT=/tmp/ditto-talkinghead python bench/bench_paste.py

With cv2's default thread pool the CPU time also counts its workers spinning after each
parallel warp (every path pays it, those with more warps more); ``--threads 1`` gives
the cleaner CPU comparison.

For 512x512 and 1920x1080 frames, single frames and batches of 8, it prints the median
CPU time (process time: every thread) and wall time per frame (all paths timed
round-robin, so that they share the machine's load) of
* ``paste``: the new path, plan reused (an image source), with a uint8 crop
  (LivePortrait: the band split) and a float 0..255 crop (Ditto: the core truncated,
  the strips around it blended with kept weights); ``plan_paste`` alone; and
  ``plan_template`` + paste per frame (a video source, every output frame with its own
  source frame: the template warped, the core from its flat square, the strips blended
  with weights made per block). Each paste row runs with the cv2 / numpy blend ("cv2")
  and, where numba is installed, with the compiled one ("numba");
* the torch ``composite`` (the previous production path, on the CPU, loaded from git
  history: ``--previous-rev``; masks precomputed);
* the cv2 reference functions (``lp_paste_back`` with its mask precomputed, as
  LivePortrait does; ``ditto_put_back``, which warps its mask every frame, as Ditto);
* with DITTO_CHECKOUT pointing at a checkout of antgroup/ditto-talkinghead: the
  official Cython ``PutBack`` compiled from that checkout into a temporary folder with
  the flags of its ``blend.pyxbld`` (needs Cython importable; bench-only).
Each new-path row also says whether its output equals the reference bit for bit.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
import types

import numpy as np
from pack import import_pack, module_from_git

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 8


def import_pipelines():
    """The checkout as package ``talking_head`` without its ComfyUI node modules."""
    import_pack()
    import talking_head.pipelines.composite.paste as paste
    import talking_head.pipelines.composite.reference as reference
    return paste, reference


# ---------------------------------------------------------------------------------------
# scenes


def scene(h: int, w: int, seed: int = 0, crop_px: float = 0.0, jitter: int = 0) -> dict:
    """A frame with a face crop placed as a tracker would: rotated 5 degrees, the 512
    crop covering ``crop_px`` frame pixels (512x512: ~the whole frame, as a portrait)."""
    rng = np.random.default_rng(seed)
    side = crop_px or min(h, w) * 0.95
    ang, s = np.deg2rad(5.0 + jitter), side / 512.0
    m = np.array([[np.cos(ang) * s, -np.sin(ang) * s, 0.0],
                  [np.sin(ang) * s, np.cos(ang) * s, 0.0], [0.0, 0.0, 1.0]])
    centre = np.array([w / 2 + 3 * jitter, h * 0.46 + 2 * jitter])
    m[:2, 2] = centre - m[:2, :2] @ [256.0, 256.0]
    return {"frame": rng.integers(0, 256, (h, w, 3), np.uint8),
            "m": m.astype(np.float32),
            "crop_u8": rng.integers(0, 256, (512, 512, 3), np.uint8),
            "crop_f32": rng.uniform(0, 255, (512, 512, 3)).astype(np.float32)}


SIZES = {"512x512": (512, 512, 0.0), "1920x1080": (1080, 1920, 700.0)}


def measure(entries: list, repeats: int, warmup: int = 2) -> list:
    """Median (cpu_ms, wall_ms) per call of each entry's ``single`` and ``batch``, the
    entries timed round-robin so that all of them see the same machine load."""
    for e in entries:
        for _ in range(warmup):
            e["single"](), e["batch"]()
    out = [{"single": ([], []), "batch": ([], [])} for _ in entries]
    for kind, n in (("single", repeats), ("batch", max(3, repeats // 4))):
        for _ in range(n):
            for e, acc in zip(entries, out):
                c, t = time.process_time(), time.perf_counter()
                e[kind]()
                acc[kind][0].append((time.process_time() - c) * 1e3)
                acc[kind][1].append((time.perf_counter() - t) * 1e3)
    return [{k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in acc.items()}
            for acc in out]


# ---------------------------------------------------------------------------------------
# the official Cython PutBack


def build_ditto_putback(checkout: str):
    """Compile core/utils/blend from ``checkout`` in a temp folder (flags of its
    blend.pyxbld) and load core/atomic_components/putback.py on top of it."""
    from Cython.Build import cythonize  # bench-only dependency
    from setuptools import Extension
    from setuptools.dist import Distribution

    src = os.path.join(checkout, "core", "utils", "blend")
    build = tempfile.mkdtemp(prefix="ditto_blend_")
    for f in ("blend.pyx", "blend_impl.c", "blend_impl.h"):
        shutil.copy(os.path.join(src, f), build)
    sources = [os.path.join(build, "blend.pyx"), os.path.join(build, "blend_impl.c")]
    ext = Extension("blend", sources,
                    include_dirs=[np.get_include(), build],
                    extra_compile_args=["-O3", "-std=c99", "-march=native", "-ffast-math"])
    dist = Distribution({"ext_modules": cythonize([ext], quiet=True, build_dir=build)})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib, cmd.build_temp = build, os.path.join(build, "tmp")
    dist.run_command("build_ext")
    so = os.path.join(build, "blend" + sysconfig.get_config_var("EXT_SUFFIX"))

    # the official module expects the package layout core.utils.{blend,get_mask}
    for name in ("ditto_core", "ditto_core.utils", "ditto_core.atomic_components"):
        sys.modules.setdefault(name, types.ModuleType(name)).__path__ = []
    blend_mod = _load("ditto_core.utils.blend", so)
    sys.modules["ditto_core.utils.blend"].blend_images_cy = blend_mod.blend_images_cy
    _load("ditto_core.utils.get_mask", os.path.join(checkout, "core", "utils", "get_mask.py"))
    pb = _load("ditto_core.atomic_components.putback",
               os.path.join(checkout, "core", "atomic_components", "putback.py"))
    return pb.PutBack(), build


def official_putback(checkout: str):
    """The official ``PutBack`` built from ``checkout`` (its build folder removed once
    loaded), or None: no checkout given, or it does not build (reported)."""
    if not checkout:
        return None
    try:
        putback, build = build_ditto_putback(checkout)
    except Exception as exc:  # a bench-only extra: report and go on
        print(f"(official Cython PutBack not built: {type(exc).__name__}: {exc})")
        return None
    shutil.rmtree(build, ignore_errors=True)  # loaded: the files are not needed
    print(f"official PutBack built from {checkout}")
    return putback


def _load(name: str, path: str):
    if path.endswith(".py"):
        spec = importlib.util.spec_from_file_location(name, path)
    else:
        from importlib.machinery import ExtensionFileLoader
        spec = importlib.util.spec_from_file_location(name, path,
                                                      loader=ExtensionFileLoader(name, path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------


def torch_composite(rev: str):
    """The previous production path: the torch ``composite`` of blend.py at ``rev``
    (the working tree's blend.py has been restructured since)."""
    try:
        prev = module_from_git(rev, "pipelines/composite/blend.py",
                               "talking_head.pipelines.composite._bench_prev_blend")
        return lambda r, f, m, w, idx: prev.composite(r, f, m, w, source_index=idx,
                                                      device="cpu")
    except Exception as exc:  # no git, or the siblings it imports have changed
        print(f"(torch composite of {rev} unavailable: {type(exc).__name__}: {exc})")
        return None


def blends(P) -> list:
    """The blends paste can run here: "cv2" (passes of cv2 / numpy), and "numba" (one
    compiled loop) where numba is installed."""
    compiled = with_blend(P, "numba", P.jit.blend_kernel) is not None
    return ["cv2"] + (["numba"] if compiled else [])


def with_blend(P, blend: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with paste running ``blend``."""
    saved = P.jit.ENABLED
    P.jit.ENABLED = blend == "numba"
    try:
        return fn(*args, **kwargs)
    finally:
        P.jit.ENABLED = saved


def plan_templates(P, matrices, template: str, hw: tuple) -> list:
    return [P.plan_template(mi, template, hw) for mi in matrices]


def run_size(label, h, w, crop_px, P, R, putback, composite, repeats) -> list:
    import torch

    s = scene(h, w, 0, crop_px)
    video = [scene(h, w, i + 1, crop_px, jitter=i % 3) for i in range(BATCH)]
    frame, m = s["frame"], s["m"]
    lp_mask = R.lp_prepare_paste_back(m, (h, w))
    dt_mask = R.ditto_warped_mask(m, (h, w))
    lp_plan, dt_plan = P.plan_paste(m, lp_mask), P.plan_paste(m, dt_mask)
    crops_u8 = np.stack([s["crop_u8"]] * BATCH)
    crops_f = np.stack([s["crop_f32"]] * BATCH)
    out1 = np.empty_like(frame)
    outb = np.empty((BATCH, h, w, 3), np.uint8)
    v_frames = np.stack([v["frame"] for v in video])
    v_masks = [R.ditto_warped_mask(v["m"], (h, w)) for v in video]

    lp_ref = R.lp_paste_back(s["crop_u8"], m, frame, lp_mask)
    dt_ref = R.ditto_put_back(frame, s["crop_f32"], m)
    v_ms = [v["m"] for v in video]
    entries = []

    def add(name, single, batch, note=""):
        entries.append({"name": name, "single": single, "batch": batch, "note": note})

    def paste_rows(blend, kind, template, crop, batch, plan, ref, ref_name, family):
        # a function: each row's lambdas keep their own arguments
        on = functools.partial(with_blend, P, blend)
        # a plan's first paste blends densely, later ones use its band split: check both
        exact = all(np.array_equal(on(P.paste, frame, crop, plan), ref) for _ in range(2))
        exact_t = np.array_equal(on(P.paste, frame, crop, P.plan_template(m, template, (h, w))),
                                 ref)
        add(f"paste {kind} crop, plan reused [{family}; {blend}]",
            lambda: on(P.paste, frame, crop, plan, out=out1),
            lambda: on(P.paste_frames, frame[None], batch, [plan], out=outb),
            f"bit-exact vs {ref_name}: {exact}; ROI {plan.roi}")
        add(f"template plan + paste per frame, {kind} crop (video; {blend})",
            lambda: on(P.paste, frame, crop, P.plan_template(m, template, (h, w)), out=out1),
            lambda: on(P.paste_frames, v_frames, batch,
                       plan_templates(P, v_ms, template, (h, w)), out=outb),
            f"bit-exact vs {ref_name}: {exact_t}; the template warped every frame, as "
            "Ditto's PutBack does")

    for blend in blends(P):
        paste_rows(blend, "uint8", "liveportrait", s["crop_u8"], crops_u8, lp_plan, lp_ref,
                   "lp_paste_back", "LivePortrait")
        paste_rows(blend, "float", "ditto", s["crop_f32"], crops_f, dt_plan, dt_ref,
                   "ditto_put_back", "Ditto")
    add("plan_paste alone (once per source frame)",
        lambda: P.plan_paste(m, dt_mask),
        lambda: P.plan_frames([v["m"] for v in video], v_masks))
    if composite is not None:
        r1 = torch.from_numpy(s["crop_f32"][None] / 255.0).float()
        rb = r1.expand(BATCH, -1, -1, -1).contiguous()
        f1 = torch.from_numpy(frame[None])
        m1 = torch.from_numpy(m[None].astype(np.float64))
        w1 = torch.from_numpy(dt_mask[None])
        add("torch composite (previous, CPU; float out)",
            lambda: composite(r1, f1, m1, w1, None),
            lambda: composite(rb, f1, m1, w1, torch.zeros(BATCH, dtype=torch.long)))
    add("cv2 reference lp_paste_back (mask precomputed)",
        lambda: R.lp_paste_back(s["crop_u8"], m, frame, lp_mask),
        lambda: [R.lp_paste_back(c, m, frame, lp_mask) for c in crops_u8])
    add("cv2 reference ditto_put_back (PutBackNumpy)",
        lambda: R.ditto_put_back(frame, s["crop_f32"], m),
        lambda: [R.ditto_put_back(frame, c, m) for c in crops_f])
    if putback is not None:
        same = np.abs(putback(frame, s["crop_f32"], m).astype(int)
                      - P.paste(frame, s["crop_f32"], dt_plan)).max()
        add("official Cython PutBack (Ditto SDK)",
            lambda: putback(frame, s["crop_f32"], m),
            lambda: [putback(frame, c, m) for c in crops_f],
            f"max |Cython - paste| = {same} level(s) (Cython uses -ffast-math FMA)")
    times = measure(entries, repeats)
    return [(label, e["name"], t["single"], tuple(v / BATCH for v in t["batch"]), e["note"])
            for e, t in zip(entries, times)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--previous-rev", default="cd31ffc",
                    help="git revision whose blend.composite is the previous path")
    ap.add_argument("--threads", type=int, default=0,
                    help="cv2 and torch threads (0: leave their defaults)")
    args = ap.parse_args(argv)
    import cv2
    import torch

    if args.threads:
        cv2.setNumThreads(args.threads)
        torch.set_num_threads(args.threads)
    P, R = import_pipelines()
    putback = official_putback(os.environ.get("DITTO_CHECKOUT", ""))
    composite = torch_composite(args.previous_rev)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f}; "
          f"numpy {np.__version__}, cv2 {cv2.__version__} ({cv2.getNumThreads()} threads), "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{os.cpu_count()} CPUs; median of {args.repeats} runs (batch: "
          f"{max(3, args.repeats // 4)} runs of {BATCH} frames)")
    head = f"{'frame':10s} {'path':58s} {'single cpu/wall':>17s} {'batch8 cpu/wall':>17s}"
    print(head + "  ms/frame")
    for label, (h, w, crop_px) in SIZES.items():
        for lab, name, single, batch, note in run_size(label, h, w, crop_px, P, R, putback,
                                                        composite, args.repeats):
            print(f"{lab:10s} {name:58s} {single[0]:7.2f} /{single[1]:7.2f}  "
                  f"{batch[0]:7.2f} /{batch[1]:7.2f}" + (f"  {note}" if note else ""))


if __name__ == "__main__":
    main()
