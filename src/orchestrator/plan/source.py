"""Load plan JSON with limits, and remember where every value stands so errors can name line and column.

`json.loads` tells where a syntax error is, but not where a *valid* value sits. :func:`locate` scans
the (already parsed, so well-formed) text once and maps each JSON path, like ``("steps", 2, "tool")``,
to its 1-based (line, column).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator._json_text import outside_strings
from orchestrator.errors import PlanLoadError
from orchestrator.plan.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "HugeNumber",
    "Limits",
    "PathKey",
    "SourceMap",
    "check_values",
    "parse_json_int",
    "parse_plan_text",
    "read_plan_file",
]

PathKey = tuple[str | int, ...]

INT_MIN, INT_MAX = -(2**63), 2**64 - 1
"""Integers a plan may hold: 64 bits (signed or unsigned). Beyond that no tool means it, and JSON readers disagree."""
_INF = float("inf")


class HugeNumber:
    """An integer literal too long to be a real number (json.loads would raise on one past 4,300 digits).

    The parser keeps it as this marker so the validator can name the step and field that holds it.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: str):
        self.digits = digits

    def __repr__(self) -> str:
        return f"{self.digits[:12]}...({len(self.digits)} digits)"


def parse_json_int(text: str) -> int | HugeNumber:
    return int(text) if len(text) <= 40 else HugeNumber(text)


@dataclass
class SourceMap:
    """JSON path -> (line, column) for a plan read from text."""

    origin: str | None = None
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: PathKey) -> tuple[int, int] | None:
        """The position of `path`, or of its nearest ancestor that has one."""
        while True:
            pos = self.positions.get(path)
            if pos is not None or not path:
                return pos
            path = path[:-1]


def parse_plan_text(text: str, *, origin: str | None = None, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, SourceMap]:
    """Parse JSON text into data plus a source map; raise PlanLoadError with line and column on bad JSON."""
    if len(text.encode("utf-8", errors="replace")) > limits.max_bytes:
        raise PlanLoadError(f"plan is larger than {limits.max_bytes:,} bytes", path=origin)
    depth = _max_bracket_depth(text)
    if depth > limits.max_depth + 2:  # +2: the plan object and the steps list hold the real content
        raise PlanLoadError(f"plan nests {depth} levels deep; the limit is {limits.max_depth}", path=origin)
    try:
        data = json.loads(text, parse_int=parse_json_int)
    except json.JSONDecodeError as exc:
        raise PlanLoadError(f"invalid JSON: {exc.msg}", path=origin, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise PlanLoadError("plan nests too deeply to read", path=origin) from None
    except ValueError as exc:  # a number json cannot convert; the hooks above keep this from happening
        raise PlanLoadError(f"invalid JSON: {exc}", path=origin) from None
    return data, SourceMap(origin, locate(text))


def read_plan_file(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, SourceMap]:
    """Read and parse a plan file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanLoadError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise PlanLoadError("is a folder, not a plan file", path=str(path)) from None
    except OSError as exc:
        raise PlanLoadError(f"cannot read: {exc.strerror}", path=str(path)) from None
    if len(raw) > limits.max_bytes:
        raise PlanLoadError(f"plan is larger than {limits.max_bytes:,} bytes", path=str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PlanLoadError("not UTF-8 text", path=str(path), line=line) from None
    return parse_plan_text(text, origin=str(path), limits=limits)


def _max_bracket_depth(text: str) -> int:
    """Deepest bracket nesting outside strings: a cheap guard before json.loads recurses."""
    depth = deepest = 0
    for _, ch in outside_strings(text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def check_values(data: Any, limits: Limits = DEFAULT_LIMITS) -> list[tuple[PathKey, str, str]]:
    """Values a plan may not hold, as (path, code, message): sizes over the limits (code ``too_large``),
    and ``invalid_value``: NUL characters, invalid Unicode (lone surrogates), numbers that are not finite
    or out of the 64-bit range. A quick pass first; paths are worked out only when something is wrong."""
    if _values_ok(data, limits):
        return []
    problems: list[tuple[PathKey, str, str]] = []
    if isinstance(data, Mapping) and isinstance(data.get("steps"), list) and len(data["steps"]) > limits.max_steps:
        what = f"{len(data['steps']):,} steps"
        problems.append((("steps",), "too_large", limits.refusal(what, limits.max_steps, "max_steps")))
    stack: list[tuple[PathKey, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) > limits.max_depth:
            problems.append((path, "too_large", f"nested deeper than {limits.max_depth} levels"))
            continue
        if isinstance(value, Mapping):
            for key in value:
                problem = _bad_scalar(key, limits) if isinstance(key, str) else None
                if problem is not None:
                    problems.append((path, problem[0], f"a field name {problem[1]}"))
            stack.extend(
                ((*path, k), v) for k, v in value.items() if not (isinstance(k, str) and _bad_scalar(k, limits))
            )
        elif isinstance(value, list | tuple):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
        else:
            problem = _bad_scalar(value, limits)
            if problem is not None:
                problems.append((path, *problem))
    problems.sort(key=lambda p: tuple(map(str, p[0])))
    return problems


def _values_ok(data: Any, limits: Limits) -> bool:
    """The quick pass: True when nothing is wrong (exact types only; anything unusual takes the slow pass)."""
    if isinstance(data, Mapping) and isinstance(data.get("steps"), list) and len(data["steps"]) > limits.max_steps:
        return False
    max_string, max_depth = limits.max_string, limits.max_depth
    stack: list[tuple[Any, int]] = [(data, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        kind = type(value)
        if kind is dict or kind is list:
            if depth >= max_depth:
                if value:
                    return False
                continue
            if kind is dict and not _keys_ok(value):
                return False
            depth += 1
            for child in value.values() if kind is dict else value:
                child_kind = type(child)
                if child_kind is int:
                    if not INT_MIN <= child <= INT_MAX:
                        return False
                elif child_kind is not bool and child is not None:
                    push((child, depth))
        elif not _scalar_ok(value, kind, max_string):
            return False
    return True


def _keys_ok(value: dict[Any, Any]) -> bool:
    for key in value:
        if type(key) is not str or "\x00" in key or (not key.isascii() and _bad_unicode(key)):
            return False
    return True


def _scalar_ok(value: Any, kind: type, max_string: int) -> bool:
    if kind is str:
        return not (len(value) > max_string or "\x00" in value or (not value.isascii() and _bad_unicode(value)))
    if kind is int:
        return bool(INT_MIN <= value <= INT_MAX)
    if kind is float:
        return not (value != value or value == _INF or value == -_INF)
    return value is None or kind is bool


_SAFE_SCALARS = frozenset({int, bool, type(None)})


def _bad_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bad_scalar(value: Any, limits: Limits) -> tuple[str, str] | None:
    if isinstance(value, str):
        if len(value) > limits.max_string:
            return "too_large", f"string of {len(value):,} characters; the limit is {limits.max_string:,}"
        if "\x00" in value:
            return "invalid_value", "contains a NUL character (\\u0000), which no text or path may hold"
        if _bad_unicode(value):
            return "invalid_value", "contains invalid Unicode (a lone surrogate such as \\ud800)"
        return None
    if isinstance(value, HugeNumber):
        return "invalid_value", f"number with {len(value.digits):,} digits is out of range (64-bit integers at most)"
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return "invalid_value", f"integer {str(value)[:20]}... is out of range (64-bit integers at most)"
    if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
        return "invalid_value", f"number {value} is not finite (write a real number, e.g. 1e308 at most)"
    return None


# --- position scanner ------------------------------------------------------------------------------------

_WS = " \t\r\n"


def locate(text: str) -> dict[PathKey, tuple[int, int]]:
    """Map every JSON path in well-formed `text` to the 1-based (line, column) where its value starts.

    Recursion depth equals the JSON nesting depth, which the caller has already bounded.
    """
    line_starts = [0]
    line_starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    positions: dict[PathKey, tuple[int, int]] = {}
    decoder = json.JSONDecoder(parse_int=parse_json_int)

    def skip(k: int) -> int:
        while k < len(text) and text[k] in _WS:
            k += 1
        return k

    def read(k: int, path: PathKey) -> int:
        k = skip(k)
        line = bisect_right(line_starts, k)
        positions[path] = (line, k - line_starts[line - 1] + 1)
        opener = text[k]
        if opener not in "{[":
            return int(decoder.raw_decode(text, k)[1])
        k = skip(k + 1)
        closer = "}" if opener == "{" else "]"
        index = 0
        while text[k] != closer:
            if opener == "{":
                key, k = decoder.raw_decode(text, k)
                k = read(skip(k) + 1, (*path, key))  # + 1 steps over the colon
            else:
                k = read(k, (*path, index))
                index += 1
            k = skip(k)
            if text[k] == ",":
                k = skip(k + 1)
        return k + 1

    read(0, ())
    return positions
