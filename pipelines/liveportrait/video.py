"""KEYPOINTS -> final frames for every LivePortrait-rendered family (LivePortrait, Ditto,
JoyVASA, expression edits): warp + decode a chunk, paste it back, hand it on."""
from __future__ import annotations

from typing import Iterator

from ..composite import BlendSpec, blend_masks, paste_back
from ..core.render_loop import stream
from ..core.runtime import CPU, RunContext
from ..core.types import Keypoints, ModelBundle, Source
from . import render


def stream_video(renderer: ModelBundle, source: Source, keypoints: Keypoints,
                 spec: BlendSpec = BlendSpec(), ctx: RunContext = CPU, chunk: int = 16,
                 batch_size: int = 4) -> Iterator:
    """Yield (b,H,W,3) uint8 frames of the final video, chunk by chunk."""
    masks = blend_masks(source, spec, ctx.with_progress(None))
    quiet = ctx.with_progress(None)
    plans: dict = {}

    def make_chunk(frames: slice):
        crops = render.render(renderer, source, keypoints, frames, quiet, batch_size)
        return paste_back(source.frames, crops, source.crop_to_frame, masks,
                          keypoints.source_index[frames], spec, quiet, plans)

    return stream(len(keypoints), make_chunk, ctx, chunk)
