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

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Limits:
    """Size limits that keep a hostile or broken plan from crashing or hanging the validator."""

    max_bytes: int = 5_000_000
    max_steps: int = 10_000
    max_depth: int = 32
    max_string: int = 100_000


DEFAULT_LIMITS = Limits()


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
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanLoadError(f"invalid JSON: {exc.msg}", path=origin, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise PlanLoadError("plan nests too deeply to read", path=origin) from None
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


def check_sizes(data: Any, limits: Limits = DEFAULT_LIMITS) -> list[tuple[PathKey, str]]:
    """Find values over the size limits (depth, string length, step count), iteratively."""
    problems: list[tuple[PathKey, str]] = []
    if isinstance(data, Mapping) and isinstance(data.get("steps"), list) and len(data["steps"]) > limits.max_steps:
        problems.append((("steps",), f"{len(data['steps']):,} steps; the limit is {limits.max_steps:,}"))
    stack: list[tuple[PathKey, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) > limits.max_depth:
            problems.append((path, f"nested deeper than {limits.max_depth} levels"))
            continue
        if isinstance(value, str):
            if len(value) > limits.max_string:
                problems.append((path, f"string of {len(value):,} characters; the limit is {limits.max_string:,}"))
        elif isinstance(value, Mapping):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
    return problems


# --- position scanner ------------------------------------------------------------------------------------

_WS = " \t\r\n"


def locate(text: str) -> dict[PathKey, tuple[int, int]]:
    """Map every JSON path in well-formed `text` to the 1-based (line, column) where its value starts.

    Recursion depth equals the JSON nesting depth, which the caller has already bounded.
    """
    line_starts = [0]
    line_starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    positions: dict[PathKey, tuple[int, int]] = {}
    decoder = json.JSONDecoder()

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
