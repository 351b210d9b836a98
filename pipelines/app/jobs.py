"""A batch's job list: one clip per line of a JSONL or CSV file, checked as a whole before
anything renders.

Each line names a ``family`` (a ``render`` command), its inputs and the options that
command takes, e.g. (JSONL)::

    {"family": "ditto", "source": "faces/anna.png", "audio": "lines/001.wav", "out": "anna_001.mp4", "emotion": "happy"}
    {"family": "musetalk", "source": "clips/ben.mp4", "audio": "lines/002.wav", "out": "ben_002.mp4", "bbox_shift": 4}
    {"family": "liveportrait", "source": "faces/cara.png", "driving": "drive/nod.mp4", "out": "cara_nod.mp4"}

or a CSV with those column names (empty cells are left out). Keys are the command's long
options with ``_`` for ``-`` (``fade_in``, ``blend``, ``region``...); ``true`` switches a flag
on. Relative input paths are relative to the job file; ``out`` is a file name inside the
batch's output folder (default: ``<line>_<source name>.mp4``). A line with an unknown family
or option, or a value its command refuses, stops the batch before it starts (every such
line is listed); a missing input file is that job's error when it runs. Every line is parsed by the
very argument parser of ``render <family>``, so a batch accepts exactly what ``render`` does.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Optional

from ..core.errors import TalkingHeadError

INPUT_KEYS = ("source", "audio", "driving")
# options that belong to the batch, not to one job
BATCH_ONLY = ("models", "download", "device", "dtype")


class JobError(TalkingHeadError):
    """One line of a job file cannot be rendered as written."""


@dataclass(frozen=True)
class Job:
    """One clip: where it was written, the ``render`` arguments, and its output path."""

    line: int
    family: str
    argv: tuple
    out: str

    @property
    def key(self) -> str:
        """A fingerprint of what the job renders (its command line): --resume compares it."""
        return hashlib.sha256(json.dumps([self.family, list(self.argv)]).encode()).hexdigest()[:16]


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # a bad job line is reported with the others, not exited on
        raise JobError(message)


def _parsers() -> dict:
    from .cli import RENDERERS, _renderer

    out = {}
    for family in RENDERERS:
        p = _Parser(prog=f"render {family}", add_help=False)
        _renderer(family).add_arguments(p)
        p.add_argument("--quiet", action="store_true")
        out[family] = p
    return out


def _rows(path: str) -> list:
    """[(line number, dict)] of a .jsonl / .csv file."""
    with open(path, newline="", encoding="utf-8") as fh:
        if path.lower().endswith(".csv"):
            return [(i + 2, {k.strip(): v.strip() for k, v in row.items() if k and v and v.strip()})
                    for i, row in enumerate(csv.DictReader(fh))]
        rows = []
        for i, text in enumerate(fh, start=1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                value = JobError(f"not valid JSON ({exc.msg} at column {exc.colno})")
            rows.append((i, value))
        return rows


def _argv(row: dict, base: str, out_dir: str, line: int) -> tuple:
    """(family, argv, output path) of one row; raises JobError."""
    if not isinstance(row, dict):
        raise JobError("a job is a JSON object with at least 'family' and 'source'")
    row = dict(row)
    family = str(row.pop("family", "")).strip()
    out = str(row.pop("out", "")).strip()
    argv = []
    for key, value in row.items():
        if key in BATCH_ONLY:
            raise JobError(f"'{key}' is set for the whole batch (on the batch command), not per job")
        if key in INPUT_KEYS and isinstance(value, str):
            # a missing input is that job's error when it runs (the file may still arrive on
            # shared storage); the batch warns about it up front
            value = value if os.path.isabs(value) else os.path.normpath(os.path.join(base, value))
        if value is None or value is False or (isinstance(value, str) and value.lower() == "false"):
            continue
        flag = "--" + key.replace("_", "-")
        if value is True or (isinstance(value, str) and value.lower() == "true"):
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    if not out:
        source = row.get("source", "clip")
        out = f"{line:04d}_{os.path.splitext(os.path.basename(str(source)))[0]}.mp4"
    if os.path.isabs(out) or os.path.normpath(out).startswith(".."):
        raise JobError(f"out {out!r} must be a file name inside the output folder")
    return family, tuple(argv), os.path.join(out_dir, os.path.normpath(out))


def load_jobs(path: str, out_dir: str, defaults: Optional[dict] = None) -> list:
    """Every job of ``path``; raises one JobError listing each bad line with its number.
    ``defaults``: batch-wide options every job gets (models, device, dtype)."""
    if not os.path.isfile(path):
        raise JobError(f"job file not found: {path}")
    parsers, base = _parsers(), os.path.dirname(os.path.abspath(path))
    jobs, problems, outs = [], [], {}
    tail = [item for k, v in (defaults or {}).items() if v not in (None, False)
            for item in ([f"--{k}"] if v is True else [f"--{k}", str(v)])]
    for line, row in _rows(path):
        try:
            if isinstance(row, Exception):
                raise row
            family, argv, out = _argv(row, base, out_dir, line)
            if family not in parsers:
                raise JobError(f"family must be one of {', '.join(parsers)}, got {family!r}")
            parsers[family].parse_args([*argv, "--out", out, *tail])
            if out in outs:
                raise JobError(f"out {os.path.basename(out)!r} is also the output of line {outs[out]}")
            outs[out] = line
            jobs.append(Job(line, family, argv + tuple(tail), out))
        except JobError as exc:
            problems.append(f"  line {line}: {exc}")
    for job in jobs:
        missing = [a for flag, a in zip(job.argv, job.argv[1:])
                   if flag in ("--source", "--audio", "--driving") and not os.path.isfile(a)]
        if missing:
            print(f"warning: line {job.line}: input not found ({', '.join(os.path.basename(m) for m in missing)}); "
                  "the job will be recorded as an error", file=sys.stderr)
    if problems:
        raise JobError(f"{len(problems)} job(s) in {os.path.basename(path)} cannot run; nothing was "
                       "started. Fix these lines:\n" + "\n".join(problems))
    if not jobs:
        raise JobError(f"{os.path.basename(path)} holds no jobs: one JSON object (or CSV row) per clip")
    return jobs


def job_args(job: Job) -> argparse.Namespace:
    """The ``render <family>`` arguments of ``job`` (quiet: the batch draws the progress)."""
    return _parsers()[job.family].parse_args([*job.argv, "--out", job.out, "--quiet"])
