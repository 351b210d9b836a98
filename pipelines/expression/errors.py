"""The errors of expression editing, scripts, keyframes and presets.

All are :class:`TalkingHeadError` subclasses, so the ComfyUI adapters show their message.
Two exist only for the "reference" mode, which must fail where AdvancedLivePortrait fails
and in the same way: they are *also* the built-in exception the reference raises
(``AssertionError`` for a bad command line, ``ZeroDivisionError`` for CHANGE = 0), so code
written against the reference keeps catching them.
"""
from ..core.errors import ShapeError, TalkingHeadError


class ExpressionError(TalkingHeadError):
    """An expression value (set, slider, preset, keyframe) cannot be used."""


class ExpressionShapeError(ExpressionError, ShapeError):
    """A tensor given to the expression maths has the wrong shape, type or values."""


class ScriptError(ExpressionError):
    """A command script line cannot be parsed or names something that does not exist."""


class ReferenceCommandError(ScriptError, AssertionError):
    """Reference mode: a bad line, reported as AdvancedLivePortrait does."""


class ReferenceZeroChangeError(ScriptError, ZeroDivisionError):
    """Reference mode: CHANGE = 0 (the reference divides the target by it)."""


class KeyframeError(ExpressionError):
    """A JSON keyframe list is malformed."""


class PresetError(ExpressionError):
    """A preset file or value does not follow the preset schema."""
