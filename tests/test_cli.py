"""The command line as a person meets it: instant help and argument errors (nothing heavy
imported), doctor's verdict as its exit code, outputs with the user's file mode."""
import os
import stat
import subprocess
import sys

import numpy as np

from tests.paths import ROOT


def _run(*args, env=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_help_and_bad_choices_answer_without_loading_torch():
    probe = ("import sys, runpy; sys.argv = ['pipelines'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('pipelines', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\n"
             "print('HEAVY', sorted(m for m in ('torch', 'cv2', 'mediapipe', 'transformers') if m in sys.modules))\n"
             "sys.exit(code)")
    for args, code in ((["--help"], 0), (["render", "ditto", "--help"], 0),
                       (["render", "ditto", "--source", "a.png", "--audio", "b.wav", "--out", "c.mp4",
                         "--emotion", "Happyy"], 2),
                       (["render", "musetalk", "--parsing-mode", "chin"], 2)):
        proc = _run("-c", probe, *args)
        assert proc.returncode == code, proc.stderr
        assert "HEAVY []" in proc.stdout, proc.stdout
        if code == 2:
            assert "Traceback" not in proc.stderr and ("invalid choice" in proc.stderr or "is not an emotion" in proc.stderr)


def test_doctor_fails_when_a_family_cannot_render(tmp_path):
    proc = _run("-m", "pipelines", "doctor", "musetalk", env={"TALKING_HEAD_MODELS": str(tmp_path)})
    assert proc.returncode == 1
    assert "NOT READY musetalk" in proc.stdout and "mediapipe" in proc.stdout


def test_outputs_follow_the_umask(tmp_path):
    from talking_head.pipelines.core import media

    old = os.umask(0o022)
    try:
        path = media.write_video(str(tmp_path / "out.mp4"), iter([np.zeros((2, 16, 16, 3), np.uint8)]), 25,
                                 media.AudioTrack.of(np.zeros(8000, np.float32), 16000))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
