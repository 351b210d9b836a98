"""Steps the nodes and the command line share, each implemented once here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..core.motion import DrivingSpec, Motion
from ..core.runtime import CPU, RunContext
from ..core.timeline import frame_mapping
from ..core.types import ModelBundle, Source
from ..face import TrackSettings, crop_inputs_256
from ..face.register import register_source
from ..liveportrait import render
from ..liveportrait.keypoints import motion_from_info
from ..liveportrait.source import attach_renderer


def register(frames, fps: float, detector, renderer: Optional[ModelBundle] = None,
             settings: TrackSettings = TrackSettings(), ctx: RunContext = CPU,
             batch_size: int = 8) -> Source:
    """Frames -> SOURCE: the face track, and with ``renderer`` the appearance and motion
    features the LivePortrait-rendered families need."""
    if renderer is None:
        return register_source(frames, fps, detector, settings, ctx)
    source = register_source(frames, fps, detector, settings, ctx.part(0, 2))
    return attach_renderer(source, renderer, ctx.part(1, 2), batch_size)


@dataclass(frozen=True)
class DrivingOptions:
    """How a driving video drives a source: ``length`` (timeline.LENGTH_MODES) when the
    source is a video of another length, how the motion composes (a DrivingSpec) and the
    crop smoothing of the driver's track."""

    length: str = "cycle"
    spec: DrivingSpec = DrivingSpec()
    smoothing: int = 3


def driving_motion(frames, fps: float, n_source: int, detector, renderer: ModelBundle,
                   options: DrivingOptions = DrivingOptions(), ctx: RunContext = CPU) -> tuple:
    """A driving video's own motion for a source of ``n_source`` frames -> (MOTION, the
    driver's SOURCE). A driver frame without a face reuses its neighbours', a driver with
    none falls back to the whole frame."""
    n_out, index = frame_mapping(n_source, int(frames.shape[0]), options.length)
    settings = TrackSettings(smooth_window=options.smoothing, whole_image_fallback=True)
    drv = register_source(frames[:n_out], fps, detector, settings, ctx.part(0, 2))
    info = render.extract_motion(renderer, crop_inputs_256(drv.crops.numpy()), ctx.part(1, 2))
    spec = options.spec
    if int(frames.shape[0]) == 1 and not spec.driver_is_image:
        spec = DrivingSpec(spec.relative, spec.expression_friendly, spec.multiplier, True)
    motion: Motion = motion_from_info(info, fps, index, spec, origin="video")
    return motion, drv
