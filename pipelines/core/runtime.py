"""Device/dtype policy, progress and interruption for code that runs without a host.

The ComfyUI bridge (nodes/host.py) layers the host's own mechanisms on top of these;
the command line and library users get them as they are.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Optional

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; otherwise the named device."""
    if preference and preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(preference: str, device: torch.device, half_ok: Optional[bool] = None) -> torch.dtype:
    """Resolve auto/fp32/fp16/bf16 for ``device``.

    Half precision on CPU is slow or unsupported for several ops (3-D grid_sample,
    conv3d), so CPU always falls back to fp32. 'auto' picks fp16 on CUDA/MPS (bf16 when the
    GPU supports it and ``half_ok`` is None) and fp32 elsewhere.
    """
    if preference not in DTYPE_CHOICES:
        raise ValueError(f"dtype must be one of {DTYPE_CHOICES}, got {preference!r}")
    if device.type == "cpu":
        return torch.float32
    if preference == "auto":
        if half_ok is False:
            return torch.float32
        return torch.float16
    if preference == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return DTYPES[preference]


class InterruptedRender(Exception):
    """Raised by :func:`check_interrupt` after :func:`request_interrupt` (standalone mode)."""


_interrupt = threading.Event()


def request_interrupt() -> None:
    _interrupt.set()


def check_interrupt() -> None:
    if _interrupt.is_set():
        _interrupt.clear()
        raise InterruptedRender("Render interrupted.")


class TerminalProgress:
    """A small progress bar on stderr (no dependency), updated at most ~10 times a second."""

    def __init__(self, total: int, desc: str = "", stream=None):
        self.total = max(1, int(total))
        self.desc = desc
        self.n = 0
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.update_absolute(self.n + n)

    def update_absolute(self, value: int) -> None:
        self.n = min(int(value), self.total)
        now = time.monotonic()
        if self.n < self.total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * self.n / self.total)
        rate = self.n / max(now - self._start, 1e-6)
        line = f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total} {rate:.1f}/s"
        try:
            self.stream.write(line + ("\n" if self.n >= self.total else ""))
            self.stream.flush()
        except (ValueError, OSError):  # closed stream (e.g. pytest capture teardown)
            pass
