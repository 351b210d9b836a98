"""Peak memory of a Ditto render against audio length (tiny networks, random weights).

Renders the fixture photo with 30 s and with 3 minutes of speech (the fixture clip looped)
through the command line's streaming path (``render ditto``, the real loaders reading a
models folder that bench/pack.py writes), each in a fresh process, and prints the wall
time and peak RSS. Flat memory means the 3-minute figure stays close to the 30 s one.

    python bench/bench_long_render.py [--seconds 30 180]   (needs ../shared beside the checkout)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from pack import PEAK_TAG, ROOT, fixture, import_pack, write_models

BENCH = os.path.dirname(os.path.abspath(__file__))


def looped_speech(folder: str, seconds: float) -> str:
    """The fixture speech repeated to ``seconds``, as a 16 kHz WAV."""
    from talking_head.pipelines.core import media

    wav = media.read_audio(fixture("speech_16k.wav"))
    n = int(seconds * 16000)
    path = os.path.join(folder, f"speech_{seconds:g}s.wav")
    media.write_audio(path, np.tile(wav, int(np.ceil(n / len(wav))))[:n], 16000)
    return path


def render(models: str, audio: str, out: str) -> tuple:
    """(wall seconds, peak RSS MiB) of one ``render ditto`` in a fresh process."""
    cmd = [sys.executable, os.path.join(BENCH, "pack.py"), "render", "ditto",
           "--source", fixture("astronaut.png"), "--audio", audio, "--out", out,
           "--preset", "ultrafast"]
    env = dict(os.environ, TALKING_HEAD_MODELS=models)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    peak = [ln for ln in proc.stderr.splitlines() if ln.startswith(PEAK_TAG)]
    if proc.returncode != 0 or not peak:
        print(proc.stderr[-2000:])
        raise SystemExit(f"render of {audio} failed (exit {proc.returncode})")
    return took, float(peak[-1].split()[1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[30, 180])
    args = ap.parse_args(argv)
    import_pack()
    import torch

    work = tempfile.mkdtemp(prefix="bench_long_render_")
    try:
        models = write_models(os.path.join(work, "models"), ("aux", "ditto"))
        for seconds in args.seconds:
            audio = looped_speech(work, seconds)
            took, peak = render(models, audio, os.path.join(work, f"out_{seconds:g}.mp4"))
            print(f"{seconds:6g} s of speech: {int(np.ceil(seconds * 25))} frames in {took:.0f} s, "
                  f"peak RSS {peak:.0f} MiB (torch {torch.__version__}, "
                  f"{torch.get_num_threads()} threads)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
