"""The CPU speed figures in one run: paste-back, whisper features, end-to-end frames/s.

Runs, one after the other and each in its own process (so that none inherits another's
threads, caches or memory):

1. ``bench_paste.py``: paste-back ms/frame at 512x512 and 1920x1080, single frames and
   batches of 8, next to the previous torch composite and, with DITTO_CHECKOUT set, the
   official Cython ``PutBack`` measured side by side;
2. ``bench_paste_back.py``: the production paste-back of a video source chunk (masks
   per chunk), this checkout against the commit before its template plans;
3. ``bench_whisper.py``: whisper features of the fixture speech, this code against the
   previous one;
4. ``bench_end_to_end.py``: ``render ditto`` frames/s (this checkout against an earlier
   commit) and the render loop with and without stage overlap.

    DITTO_CHECKOUT=/tmp/ditto-talkinghead python bench/bench_speed.py [--threads 1]
        [--repeats 60] [--seconds 1.0]

``--threads`` applies to the paste-back and whisper benches (1: the cleanest CPU-time
comparison); the end-to-end bench keeps its own default of 2 threads.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(script: str, args: list) -> int:
    cmd = [sys.executable, os.path.join(HERE, script)] + args
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    print(f"=== {script}: exit {rc}, {time.perf_counter() - start:.0f} s", flush=True)
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=60, help="paste-back repeats")
    ap.add_argument("--seconds", type=float, default=1.0, help="end-to-end speech length")
    args = ap.parse_args(argv)
    if not os.environ.get("DITTO_CHECKOUT"):
        print("(DITTO_CHECKOUT not set: no side-by-side row for the official Cython PutBack)")
    failed = [s for s, a in (
        ("bench_paste.py", ["--threads", str(args.threads), "--repeats", str(args.repeats)]),
        ("bench_paste_back.py", ["--threads", str(args.threads)]),
        ("bench_whisper.py", ["--threads", str(args.threads)]),
        ("bench_end_to_end.py", ["--seconds", str(args.seconds)]),
    ) if run(s, a) != 0]
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
