"""The renderer's part of a SOURCE: appearance features (F) and motion-extractor info (M)
of every source crop, computed once in batches."""
from __future__ import annotations

import dataclasses

from ..core.runtime import CPU, RunContext
from ..core.types import ModelBundle, Source
from ..face import crop_inputs_256
from . import render


def attach_renderer(source: Source, renderer: ModelBundle, ctx: RunContext = CPU,
                    batch_size: int = 8) -> Source:
    """A copy of ``source`` with ``motion`` (M) and ``appearance`` (F) filled in."""
    x256 = crop_inputs_256(source.crops.numpy())
    motion = render.extract_motion(renderer, x256, ctx.part(0, 2), batch_size)
    appearance = render.extract_appearance(renderer, x256, ctx.part(1, 2), batch_size)
    return dataclasses.replace(source, motion=motion, appearance=appearance)
