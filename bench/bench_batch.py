"""Batch rendering throughput: N short Ditto jobs on Ray with 1 and 2 workers, and locally.

    python bench/bench_batch.py [--jobs 8] [--seconds 1] [--workers 1 2] [--no-local]

Each mode runs the real command line (``batch jobs.jsonl --out ...``, through
bench/pack.py at the tiny network sizes with random weights) in a fresh process, on a
models folder and inputs that this bench writes to a temporary folder and removes
(with Ray's session files). The
jobs: the fixture photo with the first ``--seconds`` of the fixture speech, seeds 0..N-1.

Per mode it prints:
* jobs/min and output frames/s over the whole command (Ray's start-up and teardown and
  each worker's model loading included), and the steady rate once every worker is up
  (results W+1..N over the time from the first result to the last);
* peak RSS of each worker process: the worker's own ``ru_maxrss`` at the end of each job,
  which the batch records in results.jsonl (the largest per worker), and of the command's
  process (with Ray: the driver, which renders nothing; locally: the renderer itself);
* the load average before and after (other processes share the CPUs).

Threads: Ray sets OMP_NUM_THREADS to an actor's CPUs (1 per worker here) unless it is
set already, so each Ray worker computes with 1 torch thread; the local mode uses torch's
default (all cores). Set OMP_NUM_THREADS yourself to make the modes comparable per thread.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from pack import PEAK_TAG, ROOT, fixture, import_pack, write_models

BENCH = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Run:
    """One batch command: its wall time, when each result appeared, what it recorded."""

    wall: float = 0.0
    arrivals: list = field(default_factory=list)    # seconds after start, one per result
    results: list = field(default_factory=list)     # results.jsonl rows
    driver_peak: float = 0.0
    code: int = 0
    stderr: str = ""


def write_jobs(work: str, n: int, seconds: float) -> str:
    """``n`` Ditto jobs on the photo and ``seconds`` of speech; returns the job file."""
    from talking_head.pipelines.core import media

    audio = os.path.join(work, "speech.wav")
    speech = media.read_audio(fixture("speech_16k.wav"))
    media.write_audio(audio, speech[: int(seconds * 16000)], 16000)
    path = os.path.join(work, "jobs.jsonl")
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"family": "ditto", "source": fixture("astronaut.png"),
                                 "audio": audio, "out": f"job{i}.mp4", "seed": i,
                                 "preset": "ultrafast"}) + "\n")
    return path


def _count_lines(path: str) -> int:
    try:
        with open(path) as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def run_batch(jobs: str, out: str, models: str, mode_args: list) -> Run:
    """Run the batch command, noting when each result line appears (polled every 0.1 s).
    Ray's session files go to the bench's temporary folder too (RAY_TMPDIR)."""
    cmd = [sys.executable, os.path.join(BENCH, "pack.py"), "batch", jobs, "--out", out, *mode_args]
    env = dict(os.environ, TALKING_HEAD_MODELS=models, RAY_DEDUP_LOGS="0",
               RAY_TMPDIR=os.path.join(os.path.dirname(jobs), "ray"))
    results, run = os.path.join(out, "results.jsonl"), Run()
    with tempfile.TemporaryFile("w+") as err:     # a pipe could fill up while we poll
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            time.sleep(0.1)
            seen = _count_lines(results)
            run.arrivals += [time.perf_counter() - start] * (seen - len(run.arrivals))
        run.wall = time.perf_counter() - start
        err.seek(0)
        run.stderr = err.read()
    run.code = proc.returncode
    with open(results) as fh:
        run.results = [json.loads(t) for t in fh]
    run.arrivals += [run.wall] * (len(run.results) - len(run.arrivals))
    peak = [ln for ln in run.stderr.splitlines() if ln.startswith(PEAK_TAG)]
    run.driver_peak = float(peak[-1].split()[1]) if peak else float("nan")
    return run


def report(name: str, run: Run, load: tuple, workers: int) -> None:
    ok = [r for r in run.results if r["status"] == "ok"]
    frames = sum(r["frames"] for r in ok)
    print(f"\n== {name}: {len(ok)}/{len(run.results)} jobs ok, {frames} frames, exit {run.code}, "
          f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    if len(ok) < len(run.results) or run.code != 0:
        print("   " + "\n   ".join(run.stderr.splitlines()[-15:]))
    print(f"   whole command {run.wall:6.1f} s: {60 * len(ok) / run.wall:6.1f} jobs/min, "
          f"{frames / run.wall:6.1f} output frames/s")
    steady(run, ok, workers)
    firsts = _first_jobs(ok)
    first = ", ".join(f"{r['seconds']:.1f}" for r in firsts)
    rest = [r["seconds"] for r in ok if r not in firsts]
    others = f"median {statistics.median(rest):.1f} s" if rest else "none"
    print(f"   job time: first of each worker (with model loading) {first} s; the others: {others}")
    for worker, peak in sorted(_worker_peaks(ok).items()):
        jobs = sum(1 for r in ok if r["worker"] == worker)
        print(f"   worker {worker}: {jobs} jobs, peak RSS {peak:.0f} MiB")
    print(f"   command process peak RSS {run.driver_peak:.0f} MiB")


def steady(run: Run, ok: list, workers: int) -> None:
    """The rate once every worker is up: results ``workers``+1..N over the time from the
    first result to the last (with W workers busy back to back, W results arrive per job
    time, so leaving W out of the count makes the span and the count match)."""
    span = run.arrivals[-1] - run.arrivals[0] if run.arrivals else 0.0
    later = ok[workers:]                           # results file order = arrival order
    if not later or span <= 0:
        return
    frames = sum(r["frames"] for r in later)
    print(f"   steady ({len(later)} result{'s' * (len(later) > 1)} in {span:5.1f} s after the "
          f"first, which came at {run.arrivals[0]:.1f} s): {60 * len(later) / span:6.1f} "
          f"jobs/min, {frames / span:6.1f} output frames/s")


def _first_jobs(rows: list) -> list:
    seen, firsts = set(), []
    for r in rows:
        if r["worker"] not in seen:
            seen.add(r["worker"])
            firsts.append(r)
    return firsts


def _worker_peaks(rows: list) -> dict:
    peaks: dict = {}
    for r in rows:
        peaks[r["worker"]] = max(peaks.get(r["worker"], 0.0), r["peak_rss_mib"])
    return peaks


def modes(args) -> list:
    """(name, extra command-line arguments, workers) of each mode to run."""
    out = [] if args.no_local else [("local (no Ray)", ["--local"], 1)]
    return out + [(f"Ray, {w} worker{'s' * (w > 1)}", ["--workers", str(w)], w)
                  for w in args.workers]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0, help="speech per job")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-local", action="store_true", help="skip the local (no Ray) fallback")
    args = ap.parse_args(argv)
    import_pack()
    import torch

    print(f"{args.jobs} Ditto jobs of {args.seconds:g} s speech (tiny networks); "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    work = tempfile.mkdtemp(prefix="bench_batch_")
    try:
        models = write_models(os.path.join(work, "models"), ("aux", "ditto"))
        jobs = write_jobs(work, args.jobs, args.seconds)
        for i, (name, extra, workers) in enumerate(modes(args)):
            load = os.getloadavg()
            run = run_batch(jobs, os.path.join(work, f"out{i}"), models, extra)
            report(name, run, load, workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
