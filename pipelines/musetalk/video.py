"""AVATAR + whisper features -> final frames, a chunk at a time through the one render loop:
generate the faces of a chunk (UNet + VAE decode), paste them back, hand them on."""
from __future__ import annotations

import dataclasses
from typing import Iterator

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
                 ctx: RunContext = CPU, chunk: int = 16, batch_size: int = 8) -> Iterator:
    """Yield (b,H,W,3) uint8 frames: one per feature row; the source frames walk their
    ping-pong cycle across chunks."""
    schedule = frame_schedule(len(avatar), len(features))
    quiet = ctx.with_progress(None)

    def make_chunk(frames: slice):
        part = dataclasses.replace(features, features=features.features[frames])
        sub = _subset(avatar, schedule[frames])
        faces = generate(bundle, sub, part, quiet, batch_size)
        return np.asarray(blend(sub, faces, ctx=quiet))

    return stream(len(features), make_chunk, ctx, max(chunk, batch_size))
