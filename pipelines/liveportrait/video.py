"""KEYPOINTS -> final frames for every LivePortrait-rendered family (LivePortrait, Ditto,
JoyVASA, expression edits): warp + decode a chunk, paste it back, hand it on."""
from __future__ import annotations

from typing import Iterator, Optional

from ..composite import BlendSpec, ChunkMasks, paste_back
from ..core.render_loop import stream
from ..core.runtime import CPU, RunContext
from ..core.types import Keypoints, ModelBundle, Source
from . import render


def stream_video(renderer: ModelBundle, source: Source, keypoints: Keypoints,
                 spec: BlendSpec = BlendSpec(), ctx: RunContext = CPU, chunk: int = 16,
                 batch_size: int = 4, overlap: Optional[bool] = None) -> Iterator:
    """Yield (b,H,W,3) uint8 frames of the final video, chunk by chunk. ``overlap``: paste
    chunk k back in a helper thread while chunk k+1 is warped and decoded (default: on a
    GPU, where the CPU's paste-back then costs no time; on the CPU both would share the
    same cores)."""
    masks = ChunkMasks(source, spec, ctx)
    quiet = ctx.with_progress(None)
    plans: dict = {}

    def render_chunk(frames: slice):
        return render.render(renderer, source, keypoints, frames, quiet, batch_size)

    def paste_chunk(crops, frames: slice):
        return paste_back(source.frames, crops, source.crop_to_frame, masks,
                          keypoints.source_index[frames], spec, quiet, plans)

    if overlap is None:
        overlap = ctx.device.type != "cpu"
    if overlap:
        return stream(len(keypoints), render_chunk, ctx, chunk, finish=paste_chunk)
    return stream(len(keypoints), lambda frames: paste_chunk(render_chunk(frames), frames), ctx, chunk)
