"""Peak memory of streaming a 512x512 video with audio to MP4: 10 s vs 60 s.

Each length runs in a fresh process (peak RSS is per process) and prints its peak
resident set size; with frames streamed to ffmpeg the two figures should be about equal.

    python bench/bench_media.py [--seconds 10 60]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from pack import import_pack, peak_rss_mib


def frames(n: int):
    """``n`` new float frames, one at a time, like a renderer."""
    import numpy as np

    base = np.random.default_rng(0).random((512, 512, 3), dtype=np.float32)
    for i in range(n):
        yield np.roll(base, i, axis=1)


def children_hwm_mib() -> float:
    """Largest VmHWM of this process's live children (ffmpeg). RUSAGE_CHILDREN would not
    do: it also counts the forked child before exec, i.e. a copy of this process's peak."""
    peak = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:         # exited meanwhile
            continue
        if int(fields["PPid"]) == os.getpid() and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
    return peak


def watch_children(stop: threading.Event, out: list) -> None:
    while not stop.wait(0.05):
        out.append(children_hwm_mib())


def child(seconds: float) -> None:
    import numpy as np

    import_pack()
    from talking_head.pipelines.core import media

    fps, rate = 25, 16000
    n = int(seconds * fps)
    t = np.arange(int(seconds * rate)) / rate
    audio = media.AudioTrack.of((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    folder = tempfile.mkdtemp(prefix="bench_media_")
    stop, seen = threading.Event(), [0.0]
    watcher = threading.Thread(target=watch_children, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        out = os.path.join(folder, "bench.mp4")
        start = time.perf_counter()
        media.write_video(out, frames(n), fps, audio, media.EncodeSettings(preset="ultrafast"))
        took = time.perf_counter() - start
        info = media.probe(out)
    finally:
        stop.set()
        shutil.rmtree(folder, ignore_errors=True)
    watcher.join()
    print(f"{seconds:5.0f} s video: {n} frames in {took:.1f} s ({n / took:.0f} fps), "
          f"duration {info.duration:.2f} s, peak RSS python {peak_rss_mib():.0f} MiB, "
          f"ffmpeg {max(seen):.0f} MiB", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return
    for s in args.seconds:      # a fresh process each: peak RSS is per process
        subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(s)], check=True)


if __name__ == "__main__":
    main()
