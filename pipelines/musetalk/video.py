"""AVATAR + whisper features -> final frames, a chunk at a time through the one render loop:
generate the faces of a chunk (UNet + VAE decode), paste them back, hand them on."""
from __future__ import annotations

import dataclasses
from typing import Iterator, Optional

import numpy as np

from ..core.render_loop import stream
from ..core.runtime import CPU, RunContext
from ..core.types import AudioFeatures, ModelBundle
from .avatar import Avatar, blend, frame_schedule, generate


def _subset(avatar: Avatar, schedule: np.ndarray) -> Avatar:
    """An avatar whose frames are ``schedule`` in order (so its own cycle is the identity)."""
    s = np.asarray(schedule)
    return dataclasses.replace(
        avatar, frames=avatar.frames[s], boxes=avatar.boxes[s], face_found=avatar.face_found[s],
        crops=avatar.crops[s], latents=avatar.latents[s], crop_boxes=avatar.crop_boxes[s],
        parsing=avatar.parsing[s], alphas=[avatar.alphas[i] for i in s])


def stream_video(bundle: ModelBundle, avatar: Avatar, features: AudioFeatures,
                 ctx: RunContext = CPU, chunk: int = 16, batch_size: int = 8,
                 overlap: Optional[bool] = None) -> Iterator:
    """Yield (b,H,W,3) uint8 frames: one per feature row; the source frames walk their
    ping-pong cycle across chunks. ``overlap``: blend chunk k in a helper thread while
    chunk k+1 is generated (default: on a GPU)."""
    schedule = frame_schedule(len(avatar), len(features))
    quiet = ctx.with_progress(None)

    def generate_chunk(frames: slice):
        part = dataclasses.replace(features, features=features.features[frames])
        return generate(bundle, _subset(avatar, schedule[frames]), part, quiet, batch_size)

    def blend_chunk(faces, frames: slice):
        return np.asarray(blend(_subset(avatar, schedule[frames]), faces, ctx=quiet))

    if overlap is None:
        overlap = ctx.device.type != "cpu"
    size = max(chunk, batch_size)
    if overlap:
        return stream(len(features), generate_chunk, ctx, size, finish=blend_chunk)
    return stream(len(features), lambda frames: blend_chunk(generate_chunk(frames), frames), ctx, size)
