"""Which source frame serves which output frame (spec ditto.md §3.1, §4.1, §10).

A video source shorter than the audio is walked forward, then backward, then forward
again (ping-pong), so the head never jumps back to frame 0.

``template_n_frames`` (N > 0) restricts a video source to its first N frames.
``preserve_motion`` keeps N for the *condition* (eye state fed to the LMDM: the
"neutral" frames) but renders over every source frame, so the video keeps its own head
motion and blinks while the audio drives the lips (see motion_stitch.preserve_motion_keys).
"""
from __future__ import annotations

import numpy as np

from ..core.timeline import mirror_indices


def template_frames(n_source: int, template_n_frames: int = -1) -> int:
    """How many leading source frames the template (condition) uses."""
    if template_n_frames is not None and template_n_frames > 0:
        return min(int(template_n_frames), n_source)
    return n_source


def render_source_indices(n_out: int, n_source: int, template_n_frames: int = -1,
                          preserve_motion: bool = False) -> np.ndarray:
    """(n_out,) int64 source frame per output frame."""
    n = n_source if preserve_motion else template_frames(n_source, template_n_frames)
    return mirror_indices(np.arange(n_out), n)
