"""Batch rendering on a local Ray cluster (2 CPUs, tiny fake models), and the job file's
validation. Each job runs ``render <family>``'s own code; workers load models once."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from talking_head.pipelines.app.jobs import JobError, load_jobs
from talking_head.pipelines.core import media
from tests.paths import FIXTURES, ROOT, needs_shared

PHOTO = os.path.join(FIXTURES, "astronaut.png")


def _speech(path, seconds):
    wav = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))[: int(seconds * 16000)]
    media.write_audio(path, wav, 16000)
    return path


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory):
    from tests import fake_models

    root = tmp_path_factory.mktemp("batch")
    fake_models.write_all(str(root / "models"), ("aux", "ditto", "musetalk"))
    _speech(str(root / "a.wav"), 0.6)
    _speech(str(root / "b.wav"), 0.8)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    jobs = [
        {"family": "ditto", "source": PHOTO, "audio": "a.wav", "out": "d1.mp4", "seed": 1},
        {"family": "ditto", "source": PHOTO, "audio": "b.wav", "out": "d2.mp4", "emotion": "happy"},
        {"family": "musetalk", "source": PHOTO, "audio": "a.wav", "out": "m1.mp4", "bbox_shift": 2},
        {"family": "ditto", "source": "missing.png", "audio": "a.wav", "out": "x1.mp4"},
        {"family": "musetalk", "source": PHOTO, "audio": "corrupt.wav", "out": "x2.mp4"},
        {"family": "ditto", "source": PHOTO, "audio": "a.wav", "out": "d3.mp4", "fade_in": 3,
         "preset": "ultrafast"},
    ]
    with open(root / "jobs.jsonl", "w") as fh:
        for job in jobs:
            fh.write(json.dumps({"preset": "ultrafast", **job}) + "\n")
    return root


def _batch(root, *args, timeout=900):
    env = dict(os.environ, TALKING_HEAD_MODELS=str(root / "models"), RAY_DEDUP_LOGS="0")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tiny_cli.py"), "batch",
                             str(root / "jobs.jsonl"), "--out", str(root / "out"), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _results(root):
    with open(root / "out" / "results.jsonl") as fh:
        return [json.loads(t) for t in fh]


def test_job_file_errors_are_all_listed_before_anything_runs(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join([
        json.dumps({"family": "ditto", "source": PHOTO, "audio": "a.wav"}),
        json.dumps({"family": "sadtalker", "source": PHOTO}),
        "{not json",
        json.dumps({"family": "musetalk", "source": PHOTO, "audio": "a.wav", "parsing_mode": "chin"}),
        json.dumps({"family": "ditto", "source": PHOTO, "audio": "a.wav", "out": "../escape.mp4"}),
        json.dumps({"family": "ditto", "source": PHOTO, "audio": "a.wav", "colour": "blue"}),
    ]) + "\n")
    with pytest.raises(JobError) as err:
        load_jobs(str(path), str(tmp_path / "out"))
    text = str(err.value)
    for line in (2, 3, 4, 5, 6):
        assert f"line {line}:" in text
    assert "line 1:" not in text and "nothing was started" in text
    csv = tmp_path / "jobs.csv"
    csv.write_text("family,source,audio,out,seed\nditto,%s,a.wav,one.mp4,3\nmusetalk,%s,a.wav,,\n" % (PHOTO, PHOTO))
    jobs = load_jobs(str(csv), str(tmp_path / "out"))
    assert [j.family for j in jobs] == ["ditto", "musetalk"] and "--seed" in jobs[0].argv
    assert jobs[1].out.endswith("0003_astronaut.mp4")


@needs_shared
@pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_batch_survives_a_killed_worker_and_resumes(batch_dir):
    root = batch_dir
    proc = _batch(root, "--workers", "2")
    # kill one worker process (by its pid, from the first result) while jobs remain
    deadline, killed = time.time() + 600, None
    while time.time() < deadline and proc.poll() is None and killed is None:
        time.sleep(0.2)
        if (root / "out" / "results.jsonl").exists():
            rows = _results(root)
            if rows and len(rows) < 5:
                pid = int(rows[0]["worker"].split("@")[0])
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                except ProcessLookupError:
                    pass
    out, err = proc.communicate(timeout=900)
    assert killed is not None, err.decode()[-3000:]
    rows = _results(root)
    by_line = {r["line"]: r for r in rows}
    ok = {ln for ln, r in by_line.items() if r["status"] == "ok"}
    assert ok == {1, 2, 3, 6}, err.decode()[-3000:]
    assert "not found" in by_line[4]["error"] and by_line[5]["status"] == "error"
    assert proc.returncode == 1            # some jobs failed
    for name in ("d1", "d2", "m1", "d3"):
        info = media.probe(str(root / "out" / f"{name}.mp4"))
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert not [n for n in os.listdir(root / "out") if n.startswith(".partial")]
    workers = {r["worker"] for r in rows if r["status"] == "ok"}
    assert len(workers) >= 2               # the work was spread (and a restarted worker is new)
    # --resume renders only what is missing
    os.remove(root / "out" / "d2.mp4")
    again = _batch(root, "--workers", "2", "--resume")
    again.communicate(timeout=900)
    rows2 = _results(root)[len(rows):]
    assert sorted(r["line"] for r in rows2) == [2, 4, 5]
    assert (root / "out" / "d2.mp4").exists()


@needs_shared
@pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None, reason="ray is not installed")
def test_ctrl_c_stops_cleanly_and_resume_renders_the_rest(batch_dir, tmp_path):
    root = tmp_path
    for name in ("models", "a.wav", "b.wav", "corrupt.wav", "jobs.jsonl"):
        os.symlink(batch_dir / name, root / name)
    proc = _batch(root, "--workers", "1")
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if (root / "out" / "results.jsonl").exists() and _results(root):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err.decode()[-3000:]
    assert b"--resume" in err and b"Traceback" not in err
    assert not [n for n in os.listdir(root / "out") if n.startswith(".partial")]
    first = _results(root)
    again = _batch(root, "--workers", "1", "--resume")
    again.communicate(timeout=900)
    rest = _results(root)[len(first):]
    done_first = {r["line"] for r in first if r["status"] == "ok"}
    assert done_first and not done_first & {r["line"] for r in rest}
    assert {r["line"] for r in first + rest} == {1, 2, 3, 4, 5, 6}
