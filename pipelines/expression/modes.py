"""The two modes of the expression maths, and every way they differ.

``"reference"`` reproduces ComfyUI-AdvancedLivePortrait (commit 3bba7329) to float32
rounding, defects included; the golden set ../shared/fidelity/expression is checked in
this mode. ``"default"`` is the same maths with the reference's defects fixed:

1. CHANGE = 0 in a script line is a jump: the command has no transition frames, its KEEP
   frames show the target, and the next command starts from it. The reference divides
   the target by CHANGE (ZeroDivisionError).
2. A whitespace-only script line (" ", a tab, the "\\r" of a blank CRLF line) is skipped
   like an empty one; the reference reports it as a bad line.
3. Script errors name the line and what is expected
   (``line 3: expected "INDEX = CHANGE : KEEP", got "2 = x"``); the reference raises
   ``AssertionError("(AdvancedLivePortrait) Command Err Line 3: 2 = x")``. Both are
   :class:`~.errors.ScriptError`; the reference-mode ones are also the built-in type.
4. Default-mode lines may end in ``# a comment`` and may name an easing as a third field
   (``1 = 10 : 5 : ease-in-out``); any other extra field or a second ``=`` is an error. The
   reference ignores whatever follows a second ``:`` or ``=`` and treats ``#`` as a bad
   line.
5. Script ramps are computed in closed form in float64 (``lerp(P, T, w(j/CHANGE))``, exact
   at both ends) with a choice of easing; the reference sums ``T/CHANGE - P/CHANGE`` once
   per frame in float32 (a ramp back to 0 ends at about 1e-7, not 0) and is linear only.
   With easing "linear" the two agree to rounding (< 2.2e-7 relative).
6. Eye/mouth retargeting from the driving video's first frame is applied to every output
   frame, frame 0 included, for image *and* video sources. The reference adds it to the
   stored source expression after frame 0 is composed and rebuilds that store from the
   source video on every frame, so it is missing on frame 0 and never present for a
   video source. Why make it work rather than refuse: the term is a constant offset
   (factor x the driver's first-frame eye/mouth expression), which means the same for
   each frame of a source video as for a still image.

Not in the reference at all (available in both modes): JSON presets instead of pickled
EXP_DATA files (PrintExpData, broken in the reference, has no counterpart: a preset is
readable as it is), JSON keyframes (keyframes.py) and :func:`~.animate.apply_offsets`.

Identical in both modes: the rotation matrix, the editor (sliders, src_ratio, sample
mixing, add_exp), the driving-keypoint forms, stitching (reference mode runs the MLP one
frame at a time like the reference; default mode batches the frames, which can differ in
the last bit), the expansion length rules, and
refusing what the reference cannot do meaningfully: negative CHANGE/KEEP (the reference
stalls the script), scripts longer than :data:`MAX_FRAMES`, non-finite numbers.
ExpData codes: both modes refuse an axis digit >= 3 or keypoint >= 21 (the reference
raises IndexError); a negative code wraps like a Python index in reference mode and is
refused in default mode.
"""
from ..core.choices import EXPRESSION_MODES as MODES
from .errors import ExpressionError

MAX_FRAMES = 100_000  # a script or keyframe list longer than this is surely a typo


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ExpressionError(f"expression mode must be one of {MODES}, got {mode!r}")
    return mode
