"""Command scripts: AdvancedLivePortrait's driver-free animation text.

One command per line::

    INDEX = CHANGE : KEEP

* INDEX picks the target expression set: 0 = none (the source's own expression);
  k >= 1 = the k-th set of the chain (the k-th Expression Editor); -1 = the last set,
  -N = the first.
* CHANGE: frames of the transition from the current state to the target. The first
  transition frame already moves 1/CHANGE of the way; the last one reaches the target.
* KEEP: frames holding the target afterwards.

The script's length is the sum of CHANGE + KEEP; after it the last state holds. Empty
lines count for line numbers. Default mode also skips whitespace-only lines, allows
``# comments``, takes an optional easing as a third field (``1 = 10 : 5 : ease-in-out``)
and makes CHANGE = 0 a jump. See modes.py for every difference from the reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .errors import ReferenceCommandError, ReferenceZeroChangeError, ScriptError
from .expset import ExpressionSet, ExpressionTrack
from .modes import MAX_FRAMES, check_mode
from .ramps import EASINGS, check_easing, ease, interpolate

FORMAT = "INDEX = CHANGE : KEEP"


@dataclass(frozen=True)
class Command:
    line: int                 # 1-based physical line number
    index: int                # INDEX as written
    change: int
    keep: int
    target: ExpressionSet
    easing: str = "linear"


@dataclass(frozen=True)
class Script:
    commands: tuple
    mode: str = "default"

    @property
    def length(self) -> int:
        """Frames the script takes: the sum of CHANGE + KEEP."""
        return sum(c.change + c.keep for c in self.commands)

    def expand(self, n_frames: int) -> ExpressionTrack:
        """The expression state of each of ``n_frames`` frames (cut or held at the end)."""
        n_frames = int(n_frames)
        if n_frames < 0 or n_frames > MAX_FRAMES:
            raise ScriptError(f"cannot expand a script to {n_frames} frames "
                              f"(0..{MAX_FRAMES})")
        if self.mode == "reference":
            return _expand_reference(self.commands, n_frames)
        return _expand_closed_form(self.commands, n_frames)


class NoSuchSet(LookupError):
    """An INDEX that names no set of the chain (internal; callers turn it into a message)."""


def chain_target(index: int, sets: Sequence[ExpressionSet]) -> ExpressionSet:
    """Index into [source, set 1, ..., set N]; the source itself (-(N+1)) is no target."""
    if index == 0:
        return ExpressionSet.zeros()
    if 1 <= index <= len(sets):
        return sets[index - 1]
    if -len(sets) <= index <= -1:
        return sets[index]
    raise NoSuchSet(index)


def parse_script(text: str, sets: Sequence[ExpressionSet] = (), mode: str = "default",
                 easing: str = "linear") -> Script:
    """Parse ``text`` against the chain's expression sets (``sets[k-1]`` is INDEX k).

    ``easing``: the curve of every transition without its own (default mode; the
    reference is linear). Bad lines raise :class:`ScriptError` naming the line.
    """
    check_mode(mode)
    check_easing(easing)
    if not isinstance(text, str):
        raise ScriptError(f"a command script is text, got {type(text).__name__}")
    parse_line = _parse_reference_line if mode == "reference" else _parse_default_line
    commands, total = [], 0
    for number, line in enumerate(text.split("\n"), 1):
        command = parse_line(number, line, sets, easing)
        if command is None:
            continue
        if command.change < 0 or command.keep < 0:
            raise ScriptError(f"line {number}: CHANGE and KEEP are frame counts and must be "
                              f">= 0, got {command.change} and {command.keep} in {line.strip()!r}")
        total += command.change + command.keep
        if total > MAX_FRAMES:
            raise ScriptError(f"line {number}: the script is {total} frames long so far; more "
                              f"than {MAX_FRAMES} frames is surely a typo")
        commands.append(command)
    return Script(tuple(commands), mode)


def _parse_reference_line(number: int, line: str, sets, easing) -> Optional[Command]:
    if line == "":
        return None
    try:
        parts = line.split("=")
        index = int(parts[0])
        target = chain_target(index, sets)
        fields = parts[1].split(":")
        change, keep = int(fields[0]), int(fields[1])
    except (ValueError, IndexError, NoSuchSet):
        raise ReferenceCommandError(
            f"(AdvancedLivePortrait) Command Err Line {number}: {line}") from None
    if change == 0:
        raise ReferenceZeroChangeError("division by zero")
    return Command(number, index, change, keep, target, "linear")


def _parse_default_line(number: int, raw: str, sets, easing) -> Optional[Command]:
    line = raw.split("#", 1)[0].strip()
    if not line:
        return None

    def bad(detail: str = "") -> ScriptError:
        return ScriptError(f'line {number}: expected "{FORMAT}", got "{raw.strip()}"'
                           + (f"; {detail}" if detail else ""))

    parts = line.split("=")
    if len(parts) != 2:
        raise bad("one '=' between INDEX and CHANGE")
    fields = parts[1].split(":")
    if len(fields) not in (2, 3):
        raise bad("CHANGE and KEEP separated by ':' (optionally ': EASING')")
    values = []
    for name, field in (("INDEX", parts[0]), ("CHANGE", fields[0]), ("KEEP", fields[1])):
        try:
            values.append(int(field))
        except ValueError:
            raise bad(f"{name} {field.strip()!r} is not a whole number") from None
    index, change, keep = values
    curve = (fields[2].strip() if len(fields) == 3 else "") or easing
    if curve not in EASINGS:
        raise ScriptError(f'line {number}: unknown easing "{curve}"; use one of '
                          f"{', '.join(EASINGS)}")
    try:
        target = chain_target(index, sets)
    except NoSuchSet:
        if not sets:
            hint = ("no expression sets are connected, so only 0 (the source's own "
                    "expression) can be used; chain Expression Editors to add targets")
        else:
            hint = (f"there are {len(sets)} expression set(s): use 0 (the source's own "
                    f"expression), 1..{len(sets)} or -1..-{len(sets)}")
        raise ScriptError(f"line {number}: INDEX {index} names no expression set; {hint}") from None
    return Command(number, index, change, keep, target, curve)


def _expand_reference(commands, n_frames: int) -> ExpressionTrack:
    """The reference's incremental float32 sum: per transition frame
    ``C += T/CHANGE; C -= P/CHANGE`` (P = the state when the command started)."""
    length = sum(c.change + c.keep for c in commands)
    steps = [c.target / c.change for c in commands]  # divided at parse time in the reference
    state = since = ExpressionSet.zeros()
    k = 0
    change_left = commands[0].change if commands else 0
    keep_left = commands[0].keep if commands else 0
    frames = []
    for i in range(n_frames):
        if i < length:
            if change_left > 0:
                change_left -= 1
                state = state + steps[k]
                state = state - since
            elif keep_left > 0:
                keep_left -= 1
            if change_left == 0 and keep_left == 0:
                k += 1
                if k < len(commands):
                    since = state / commands[k].change
                    change_left, keep_left = commands[k].change, commands[k].keep
        frames.append(state)
    return ExpressionTrack.from_sets(frames)


def _expand_closed_form(commands, n_frames: int) -> ExpressionTrack:
    """``lerp(P, T, w(j/CHANGE))`` on transition frame j, T on keep frames; CHANGE = 0 jumps
    (no transition frame: the target holds from the next frame shown)."""
    sets = [ExpressionSet.zeros()] + [c.target for c in commands]
    plan = []
    for k, c in enumerate(commands):
        plan += [(k, k + 1, ease(c.easing, j / c.change)) for j in range(1, c.change + 1)]
        plan += [(k + 1, k + 1, 0.0)] * c.keep
    last = len(commands)
    plan = plan[:n_frames] + [(last, last, 0.0)] * max(0, n_frames - len(plan))
    return interpolate(sets, plan)
