"""The one chunked render loop: output frames are made a chunk at a time and handed on
(to the encoder, or collected by a node), so memory holds one chunk of frames, whatever
the video length. Every family renders through it with its own ``make_chunk``.

With a ``finish`` stage (the CPU paste-back after the networks), chunk k is finished in a
helper thread while chunk k+1 goes through the networks, the way the official Ditto runs
its stages in threads: on a GPU the CPU work hides behind the device's. At most two
chunks are in flight, so memory stays flat.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Optional

from .runtime import CPU, RunContext


def stream(n_frames: int, make_chunk: Callable[[slice], object], ctx: RunContext = CPU,
           chunk: int = 16, finish: Optional[Callable[[object, slice], object]] = None) -> Iterator:
    """Yield ``finish(make_chunk(s), s)`` (or ``make_chunk(s)``) for consecutive slices
    ``s`` of ``range(n_frames)``, in order; a stop request is honoured between chunks,
    progress is reported after each."""
    chunk = max(1, int(chunk))
    slices = [slice(s, min(n_frames, s + chunk)) for s in range(0, n_frames, chunk)]
    if finish is None:
        for frames in slices:
            ctx.check()
            yield make_chunk(frames)
            ctx.report(frames.stop, n_frames)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ths-finish") as pool:
        pending = None
        try:
            for frames in slices:
                ctx.check()
                made = make_chunk(frames)
                if pending is not None:
                    yield pending[0].result()
                    ctx.report(pending[1].stop, n_frames)
                pending = (pool.submit(finish, made, frames), frames)
            if pending is not None:
                yield pending[0].result()
                ctx.report(pending[1].stop, n_frames)
        finally:
            if pending is not None:
                pending[0].cancel()
