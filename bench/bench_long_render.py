"""Peak memory of a Ditto render against audio length (tiny configs, fake weights).

Renders the fixture photo with 30 s and with 3 minutes of speech (the fixture clip looped)
through the command line's streaming path, each in a fresh process, and prints the
wall time and peak RSS. Flat memory means the 3-minute figure stays close to the 30 s one.

    python bench/bench_long_render.py            (needs ../shared beside the checkout)
"""
import os
import subprocess
import sys
import tempfile
import time

from pack import ROOT, import_pack


def make_inputs(folder: str, seconds: float) -> str:
    import numpy as np

    from talking_head.pipelines.core import media
    from tests.paths import FIXTURES

    wav = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))
    reps = int(np.ceil(seconds * 16000 / len(wav)))
    long = np.tile(wav, reps)[: int(seconds * 16000)]
    path = os.path.join(folder, f"speech_{int(seconds)}s.wav")
    import wave

    with wave.open(path, "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes((np.clip(long, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def main() -> None:
    import_pack()
    from tests import fake_models
    from tests.paths import FIXTURES

    work = tempfile.mkdtemp()
    models = fake_models.write_all(os.path.join(work, "models"), ("aux", "ditto"))
    env = dict(os.environ, TALKING_HEAD_MODELS=models, TALKING_HEAD_TINY_MODELS="1")
    for seconds in (30, 180):
        audio = make_inputs(work, seconds)
        out = os.path.join(work, f"out_{seconds}.mp4")
        cmd = [sys.executable, "-c",
               "import resource, runpy, sys; sys.argv = ['pipelines'] + sys.argv[1:];"
               "code = 0\ntry:\n    runpy.run_module('pipelines', run_name='__main__')\n"
               "except SystemExit as e:\n    code = e.code\n"
               "print('PEAK_RSS_MIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)\n"
               "sys.exit(code)",
               "render", "ditto", "--source", os.path.join(FIXTURES, "astronaut.png"), "--audio", audio,
               "--out", out, "--preset", "ultrafast"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.perf_counter() - start
        peak = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_RSS_MIB")]
        if proc.returncode != 0 or not peak:
            print(proc.stderr[-2000:])
            raise SystemExit(f"render of {seconds} s failed")
        frames = int(seconds * 25)
        print(f"{seconds:4d} s of speech: {frames} frames in {took:.0f} s, "
              f"peak RSS {float(peak[0].split()[1]):.0f} MiB (torch {__import__('torch').__version__}, "
              f"{__import__('torch').get_num_threads()} threads)")


if __name__ == "__main__":
    main()
