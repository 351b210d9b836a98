"""Errors a person can act on.

Every failure that a user can fix (missing weights, bad media, no face) raises a
subclass of :class:`TalkingHeadError` whose message says what was wrong and what to
do. The ComfyUI adapters let these propagate as they are, so the UI shows the message
instead of a deep stack trace.
"""


class TalkingHeadError(Exception):
    """Base class of every user-facing error of the pack."""


class MediaError(TalkingHeadError):
    """An input image, video or audio file cannot be used."""


class MissingWeightsError(TalkingHeadError):
    """A checkpoint file is not where the pack looks for it."""


class CheckpointError(TalkingHeadError):
    """A checkpoint file exists but does not fit the network (keys, shapes, format)."""


class UnsafePickleError(CheckpointError):
    """A pickled file asked for something other than plain data."""


class NoFaceError(TalkingHeadError):
    """No usable face was found in any frame of a source."""


class ShapeError(TalkingHeadError, ValueError):
    """A value passed between nodes has the wrong shape or type."""
