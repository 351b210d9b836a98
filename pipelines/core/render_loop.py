"""The one chunked render loop: output frames are made a chunk at a time and handed on
(to the encoder, or collected by a node), so memory holds one chunk of frames, whatever
the video length. Every family renders through it with its own ``make_chunk``."""
from __future__ import annotations

from typing import Callable, Iterator

from .runtime import CPU, RunContext


def stream(n_frames: int, make_chunk: Callable[[slice], object], ctx: RunContext = CPU,
           chunk: int = 16) -> Iterator:
    """Yield ``make_chunk(slice)`` for consecutive slices of ``range(n_frames)``; a stop
    request is honoured between chunks, progress is reported after each."""
    chunk = max(1, int(chunk))
    for start in range(0, n_frames, chunk):
        ctx.check()
        frames = slice(start, min(n_frames, start + chunk))
        yield make_chunk(frames)
        ctx.report(frames.stop, n_frames)
