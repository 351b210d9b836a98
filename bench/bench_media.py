"""Peak memory of streaming a 512x512 video with audio to MP4: 10 s vs 60 s.

Each length runs in a fresh process (peak RSS is per process) and prints its peak
resident set size; with frames streamed to ffmpeg the two figures should be about equal.

    python bench/bench_media.py
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(seconds: float) -> None:
    sys.path.insert(0, ROOT)
    import numpy as np

    from pipelines import media

    fps, rate = 25, 16000
    n = int(seconds * fps)
    t = np.arange(int(seconds * rate)) / rate
    audio = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]

    def frames():
        rng = np.random.default_rng(0)
        base = rng.random((512, 512, 3), dtype=np.float32)
        for i in range(n):
            yield np.roll(base, i, axis=1)  # a new float frame each time, like a renderer

    out = os.path.join(tempfile.mkdtemp(), "bench.mp4")
    start = time.perf_counter()
    media.write_video(out, frames(), fps, audio, rate, preset="ultrafast")
    took = time.perf_counter() - start
    info = media.probe(out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{seconds:5.0f} s video: {n} frames in {took:.1f} s ({n / took:.0f} fps), "
          f"duration {info.duration:.2f} s, peak RSS python {peak:.0f} MiB, ffmpeg {kids:.0f} MiB")
    os.remove(out)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(float(sys.argv[1]))
    else:
        for s in (10, 60):
            subprocess.run([sys.executable, __file__, str(s)], check=True)
