"""Where a step runs and how it reports: the run context, and the device/dtype policy.

Every heavy step takes one :class:`RunContext` (device, compute dtype, progress sink,
interrupt check) instead of threading those four by hand. The ComfyUI bridge
(nodes/host.py) builds one from the host's own mechanisms; the command line and library
users get :meth:`RunContext.default` (CPU or the first GPU, the standalone interrupt flag).

Precision policy (one rule, :func:`resolve_dtype`; each family applies it as documented
in its loader):

* CPU always computes in fp32 (half precision is slower there, and 3-D grid_sample and
  conv3d lack fp16 kernels);
* "auto" on a GPU: bf16 where the GPU supports it, else fp16; fp32 when the host says
  half precision is unsafe (ComfyUI's ``should_use_fp16`` is False);
* an explicit "bf16" on a GPU without bf16 falls back to fp16 (said in the log).

How the families use it: LivePortrait, Ditto's LMDM and JoyVASA keep fp32 weights and
run under ``autocast(dtype)`` (as the official LivePortrait does); MuseTalk casts its UNet
and VAE weights to ``dtype`` (as the official MuseTalk does; it halves their memory).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch

from .choices import DTYPES
from .errors import TalkingHeadError

DTYPE_OF = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_CHOICES = DTYPES
log = logging.getLogger("talking_head")

Progress = Callable[[int, int], None]     # (done, total)
Interrupt = Callable[[], None]            # raises to stop


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; otherwise the named device."""
    if preference and preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(preference: str, device: torch.device, half_ok: Optional[bool] = None) -> torch.dtype:
    """The compute dtype for ``preference`` (auto/fp32/fp16/bf16) on ``device`` (see above).
    ``half_ok``: the host's verdict on half precision for this device (None = no opinion)."""
    if preference not in DTYPE_CHOICES:
        raise TalkingHeadError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {preference!r}")
    device = torch.device(device)
    if device.type == "cpu":
        return torch.float32
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if preference == "auto":
        if half_ok is False:
            return torch.float32
        return torch.bfloat16 if bf16 else torch.float16
    if preference == "bf16" and not bf16:
        log.warning("bf16 is not supported on %s; using fp16", device)
        return torch.float16
    return DTYPE_OF[preference]


class InterruptedRender(Exception):
    """Raised by :func:`check_interrupt` after :func:`request_interrupt` (standalone mode)."""


_interrupt = threading.Event()


def request_interrupt() -> None:
    _interrupt.set()


def check_interrupt() -> None:
    if _interrupt.is_set():
        _interrupt.clear()
        raise InterruptedRender("Render interrupted.")


@dataclass(frozen=True)
class RunContext:
    """Device, compute dtype, progress sink and interrupt check of one run.

    ``progress(done, total)`` is called as work completes; ``check()`` raises when the user
    asked to stop (call it between units of work that take well under a second).
    ``part(i, n)`` gives a context whose progress fills the i-th of n equal shares of this
    one, for steps made of sub-steps.
    """

    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    progress: Optional[Progress] = None
    interrupt: Optional[Interrupt] = check_interrupt

    @classmethod
    def default(cls, device: str = "auto", dtype: str = "auto") -> "RunContext":
        dev = pick_device(device)
        return cls(dev, resolve_dtype(dtype, dev))

    def check(self) -> None:
        if self.interrupt is not None:
            self.interrupt()

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(int(done), max(1, int(total)))

    def part(self, index: int, count: int) -> "RunContext":
        if self.progress is None or count <= 1:
            return self
        parent = self.progress

        def share(done: int, total: int) -> None:
            parent(index * total + done, count * total)

        return replace(self, progress=share)

    def with_progress(self, progress: Optional[Progress]) -> "RunContext":
        return replace(self, progress=progress)

    def autocast(self):
        """Mixed precision for networks kept in fp32 (no-op on the CPU and in fp32)."""
        if self.dtype == torch.float32 or self.device.type == "cpu":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @contextlib.contextmanager
    def inside(self, *networks):
        """Check for a stop before every submodule of ``networks`` runs, so one long forward
        pass (a full-size decoder takes seconds per frame on a CPU) ends within one layer."""
        if self.interrupt is None:
            yield
            return
        hook = lambda _module, _args: self.interrupt()  # noqa: E731
        handles = [m.register_forward_pre_hook(hook) for net in networks
                   if isinstance(net, torch.nn.Module) for m in net.modules()]
        try:
            yield
        finally:
            for h in handles:
                h.remove()


CPU = RunContext()


class TerminalProgress:
    """A small progress bar on stderr (no dependency), updated at most ~10 times a second.
    The rate counts from the first update, so the first figure is not inflated."""

    def __init__(self, total: int, desc: str = "", stream=None):
        self.total = max(1, int(total))
        self.desc = desc
        self.n = 0
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._start: Optional[float] = None
        self._start_n = 0

    def update(self, n: int = 1) -> None:
        self.update_absolute(self.n + n)

    def update_absolute(self, value: int, total: Optional[int] = None) -> None:
        if total is not None:
            self.total = max(1, int(total))
        self.n = min(int(value), self.total)
        now = time.monotonic()
        if self._start is None:
            self._start, self._start_n = now, self.n
        if self.n < self.total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * self.n / self.total)
        elapsed = now - self._start
        rate = f" {(self.n - self._start_n) / elapsed:.1f}/s" if elapsed > 0.5 else ""
        line = f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total}{rate}"
        try:
            self.stream.write(line + ("\n" if self.n >= self.total else ""))
            self.stream.flush()
        except (ValueError, OSError):  # closed stream (e.g. pytest capture teardown)
            pass
