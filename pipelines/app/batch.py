"""Batch rendering: many clips, rendered by workers that each load their models once.

    python -m pipelines batch jobs.jsonl --out renders/ [--workers 2] [--gpus-per-worker 1]
                                         [--address ray://head:10001] [--resume]

On Ray (``pip install ray``) each worker is an actor holding its family's loaded models (one
per GPU with ``--gpus-per-worker``, else one CPU each), fed by Ray's scheduler: a local
cluster by default, an existing one with ``--address``. Without Ray the same jobs run in
this process, one after another. Either way every job runs exactly ``render <family>``'s
code (jobs.py parses its line with that command's own parser).

Reliability: outputs are written under a temporary name and renamed when complete; a
failing job records its error and the batch goes on; a worker that dies is restarted and
its job retried (Ray's actor restarts and task retries, bounded); ``--resume`` skips jobs
whose output exists with a matching record; Ctrl-C stops the workers, removes their
temporary files and says how to resume. ``results.jsonl`` in the output folder records,
per job: line, key, status, error, output, frames, seconds, worker, peak memory.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import sys
import time
from dataclasses import asdict, dataclass
from typing import Optional

from ..core import media
from .jobs import Job, job_args, load_jobs

RESULTS = "results.jsonl"
MAX_RESTARTS = 3        # a worker that dies comes back this often
MAX_TASK_RETRIES = 2    # and the job it held is tried again this often


@dataclass
class Result:
    line: int
    key: str
    status: str                 # "ok" or "error"
    output: str = ""
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    worker: str = ""
    peak_rss_mib: float = 0.0


class Worker:
    """Renders jobs in its process; the models it loads stay loaded for the next job
    (app.models caches one bundle per family)."""

    def __init__(self, sizes: Optional[dict] = None):
        from . import models

        if sizes:
            models.SIZES.update(sizes)
        self.name = f"{os.getpid()}@{socket.gethostname()}"

    def render(self, job: Job) -> Result:
        import resource

        from ..core.errors import TalkingHeadError
        from .cli import _renderer

        start = time.perf_counter()
        result = Result(job.line, job.key, "ok", worker=self.name)
        try:
            result.output, result.frames = _renderer(job.family).render(job_args(job))
        except TalkingHeadError as exc:
            result.status, result.error = "error", str(exc)
        except Exception as exc:  # a bug must not stop the batch: record it and go on
            result.status, result.error = "error", f"{type(exc).__name__}: {exc}"
        result.seconds = round(time.perf_counter() - start, 3)
        result.peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return result

    def pid(self) -> int:
        return os.getpid()


class Progress:
    """One line for the whole batch: jobs done, frames/s, ETA."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.frames = total, 0, 0
        self.start = time.monotonic()
        self.stream = stream or sys.stderr

    def add(self, result: Result) -> None:
        self.done += 1
        self.frames += result.frames
        elapsed = max(time.monotonic() - self.start, 1e-6)
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * int(30 * self.done / self.total)
        self.stream.write(f"\r[{bar:<30}] {self.done}/{self.total} jobs  {self.frames / elapsed:.1f} frames/s"
                          f"  ETA {int(eta // 60)}:{int(eta % 60):02d} ")
        self.stream.flush()


def _done_before(jobs: list, out_dir: str) -> set:
    """Keys of jobs a previous run finished (record ok, output still there)."""
    done = set()
    try:
        with open(os.path.join(out_dir, RESULTS)) as fh:
            for text in fh:
                rec = json.loads(text)
                if rec.get("status") == "ok" and os.path.isfile(rec.get("output", "")):
                    done.add(rec["key"])
    except (OSError, json.JSONDecodeError):
        pass
    return done


def _record(out_dir: str, result: Result) -> None:
    with open(os.path.join(out_dir, RESULTS), "a") as fh:
        fh.write(json.dumps(asdict(result)) + "\n")


def _run_local(todo: list, sizes, report) -> None:
    worker = Worker(sizes)
    for job in todo:
        report(job, worker.render(job))


def _run_ray(todo: list, sizes, report, options) -> None:
    import ray

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    package = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
                        "TALKING_HEAD_MODELS": os.environ.get("TALKING_HEAD_MODELS", "")}}
    if options.address:   # other machines get the code shipped; inputs must be on shared storage
        env = {"py_modules": [os.path.join(root, package)]}
    with _ctrl_c() as stopped:     # from here on, also while Ray starts
        ray.init(address=options.address, runtime_env=env, include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True,
                 **({} if options.address else {"num_cpus": max(options.workers, os.cpu_count() or 1)}))
        remote = ray.remote(num_cpus=0 if options.gpus_per_worker else 1,
                            num_gpus=options.gpus_per_worker, max_restarts=MAX_RESTARTS,
                            max_task_retries=MAX_TASK_RETRIES)(Worker)
        workers = [remote.remote(sizes) for _ in range(options.workers)]
        try:
            _feed(workers, list(todo), report, stopped)
        finally:
            for w in workers:
                ray.kill(w, no_restart=True)
            ray.shutdown()


def _feed(workers: list, queue: list, report, stopped: threading.Event) -> None:
    """Give every idle worker the next job until all are done; a set ``stopped`` (Ctrl-C)
    ends it with KeyboardInterrupt within half a second."""
    import ray

    running = {}     # future -> (worker, job)
    while queue or running:
        if stopped.is_set():
            raise KeyboardInterrupt
        busy = {w for w, _ in running.values()}
        for w in workers:
            if queue and w not in busy:
                job = queue.pop(0)
                running[w.render.remote(job)] = (w, job)
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        if not ready:
            continue
        _, job = running.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except Exception as exc:    # the worker died more often than it may restart
            result = Result(job.line, job.key, "error", error=f"worker lost: {exc}")
        report(job, result)


class _ctrl_c:
    """Ctrl-C (SIGINT) sets an event instead of raising inside Ray's blocking calls, where
    the interrupt can be lost; the loop checks it between short waits and stops itself.
    Outside the main thread (no signal handlers there) the event is never set."""

    def __enter__(self) -> threading.Event:
        self.event, self.previous = threading.Event(), None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


@dataclass(frozen=True)
class BatchOptions:
    workers: int = 1
    gpus_per_worker: float = 0.0
    address: Optional[str] = None
    resume: bool = False
    local: bool = False          # never use Ray, even when it is installed


def run_batch(path: str, out_dir: str, options: BatchOptions = BatchOptions(),
              defaults: Optional[dict] = None) -> list:
    """Render every job of ``path`` into ``out_dir``; returns the Results of this run."""
    from . import models

    os.makedirs(out_dir, exist_ok=True)
    media.sweep_partials(out_dir)
    jobs = load_jobs(path, out_dir, defaults)
    skip = _done_before(jobs, out_dir) if options.resume else set()
    todo = [j for j in jobs if j.key not in skip]
    if skip:
        print(f"resume: {len(jobs) - len(todo)} of {len(jobs)} jobs already rendered", file=sys.stderr)
    results, progress = [], Progress(max(1, len(todo)))

    def report(job: Job, result: Result) -> None:
        _record(out_dir, result)
        results.append(result)
        progress.add(result)

    use_ray = not options.local and _have_ray()
    if not use_ray and not options.local:
        print("note: Ray is not installed (pip install ray), so the jobs run one after another "
              "in this process", file=sys.stderr)
    sizes = {k: v for k, v in models.SIZES.items() if v is not None}
    try:
        if use_ray:
            _run_ray(todo, sizes, report, options)
        else:
            _run_local(todo, sizes, report)
    except KeyboardInterrupt:
        media.sweep_partials(out_dir, max_age_s=0)
        print(f"\ninterrupted: {len(results)} of {len(todo)} jobs done, no partial file left. "
              f"Run the same command with --resume to render the rest.", file=sys.stderr)
        raise
    print("", file=sys.stderr)
    for r in sorted(results, key=lambda r: r.line):
        text = (f"{os.path.basename(r.output)}: {r.frames} frames in {r.seconds:.1f} s on {r.worker}"
                if r.status == "ok" else f"ERROR {r.error.splitlines()[0] if r.error else ''}")
        print(f"  line {r.line}: {text}", file=sys.stderr)
    return results


def _have_ray() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None
