"""Read the JSON a model wrote, tolerantly, and pull step objects out of a plan while it is still streaming.

Models asked for JSON without native structured output wrap it in code fences or prose, and leave trailing
commas. :func:`read_json` copes with all three; it never guesses beyond that (no quote repair, no
completion of a cut document), so a broken answer is an error the planner sends back to the model.

:class:`StepExtractor` is fed the answer piece by piece as it streams and returns each element of the
top-level ``"steps": [...]`` list the moment its closing brace arrives, so the executor can start it while
the model is still writing the rest of the plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator._json_text import outside_strings

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


class JSONReadError(ValueError):
    """The text holds no readable JSON object; the message says why, for the model to fix."""


def read_json(text: str) -> Any:
    """Parse a JSON object out of a model's answer.

    Accepts: plain JSON; JSON inside a Markdown code fence; JSON with prose before or after it; trailing
    commas before ``}`` or ``]``.

    Raises:
        JSONReadError: nothing in the text parses as a JSON object.
    """
    stripped = text.strip()
    if not stripped:
        raise JSONReadError("the answer was empty; expected a JSON object")
    candidates = [stripped]
    candidates.extend(m.group(1).strip() for m in _FENCE.finditer(text))
    span = _outer_object(text)
    if span is not None:
        candidates.append(text[span[0] : span[1]])
    last_error = ""
    for candidate in candidates:
        for attempt in (candidate, strip_trailing_commas(candidate)):
            try:
                return json.loads(attempt)
            except json.JSONDecodeError as exc:
                last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if span is None:
        if "{" in text:
            raise JSONReadError("the JSON object is not complete (a closing brace is missing)")
        raise JSONReadError("the answer holds no JSON object")
    raise JSONReadError(f"the answer is not valid JSON: {last_error}")


def read_plan_json(text: str) -> Any:
    """:func:`read_json`, plus unwrapping ``{"plan": {...}}`` when the model nested the plan one level."""
    data = read_json(text)
    if isinstance(data, Mapping) and "steps" not in data and len(data) == 1:
        (inner,) = data.values()
        if isinstance(inner, Mapping) and "steps" in inner:
            return dict(inner)
    return data


def strip_trailing_commas(text: str) -> str:
    """Remove commas that directly precede ``}`` or ``]`` (outside strings; whitespace between is kept)."""
    dropped: list[int] = []
    comma: int | None = None  # the last comma seen, until something other than whitespace follows it
    for index, ch in outside_strings(text):
        if ch in " \t\r\n":
            continue
        if ch in "}]" and comma is not None:
            dropped.append(comma)
        comma = index if ch == "," else None
    if not dropped:
        return text
    pieces, last = [], 0
    for index in dropped:
        pieces.append(text[last:index])
        last = index + 1
    pieces.append(text[last:])
    return "".join(pieces)


def _outer_object(text: str) -> tuple[int, int] | None:
    """The span of the first balanced ``{...}`` in `text` (strings respected), or None."""
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    for index, ch in outside_strings(text, start):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return start, index + 1
    return None


@dataclass
class _Frame:
    """One open container while scanning: an object (with the key being read) or a list."""

    is_object: bool
    key: str | None = None
    expecting_key: bool = True
    is_steps: bool = False


@dataclass
class StepExtractor:
    """Incrementally extract the elements of a plan's top-level ``"steps"`` list from streamed text.

    Feed it every piece of the answer in order; :meth:`feed` returns the step objects completed by that
    piece (each parsed, trailing commas tolerated). Text before the first ``{`` (prose, a code fence) is
    skipped. A step that does not parse is returned as :attr:`broken` text and skipped, so the final
    validation (and the repair loop) deals with it.

        >>> extractor = StepExtractor()
        >>> extractor.feed('{"steps": [{"id": "a", "tool": "t"}, {"id"')
        [{'id': 'a', 'tool': 't'}]
    """

    broken: list[str] = field(default_factory=list)
    count: int = 0
    _stack: list[_Frame] = field(default_factory=list)
    _started: bool = False
    _done: bool = False
    _in_string: bool = False
    _escaped: bool = False
    _string_start: int = 0
    _step_start: int | None = None
    _pos: int = 0
    _text: str = ""

    def feed(self, piece: str) -> list[dict[str, Any]]:
        """Add a piece of the answer; return the step objects it completed."""
        if self._done or not piece:
            return []
        self._text += piece
        found: list[dict[str, Any]] = []
        text = self._text
        while self._pos < len(text) and not self._done:
            self._scan(text, self._pos, found)
            self._pos += 1
        return found

    @property
    def text(self) -> str:
        """Everything fed so far."""
        return self._text

    def _scan(self, text: str, index: int, found: list[dict[str, Any]]) -> None:
        ch = text[index]
        if self._in_string:
            self._scan_string(text, index, ch)
            return
        if not self._started:
            if ch == "{":
                self._started = True
                self._stack.append(_Frame(is_object=True))
            return
        stack = self._stack
        top = stack[-1] if stack else None
        if ch == '"':
            self._in_string = True
            self._string_start = index
        elif ch == "{" or ch == "[":
            frame = _Frame(is_object=ch == "{")
            if top is not None:
                if top.is_steps and frame.is_object and self._step_start is None:
                    self._step_start = index
                if ch == "[" and top.is_object and len(stack) == 1 and top.key == "steps":
                    frame.is_steps = True
            stack.append(frame)
        elif ch == "}" or ch == "]":
            stack.pop()
            if not stack:
                self._done = True
                return
            if ch == "}" and stack[-1].is_steps and self._step_start is not None:
                self._emit(text[self._step_start : index + 1], found)
                self._step_start = None
        elif ch == ":" and top is not None and top.is_object:
            top.expecting_key = False
        elif ch == "," and top is not None and top.is_object:
            top.expecting_key = True

    def _scan_string(self, text: str, index: int, ch: str) -> None:
        if self._escaped:
            self._escaped = False
        elif ch == "\\":
            self._escaped = True
        elif ch == '"':
            self._in_string = False
            self._end_string(text, index)

    def _end_string(self, text: str, index: int) -> None:
        top = self._stack[-1] if self._stack else None
        if top is not None and top.is_object and top.expecting_key:
            try:
                top.key = json.loads(text[self._string_start : index + 1])
            except json.JSONDecodeError:
                top.key = None

    def _emit(self, raw: str, found: list[dict[str, Any]]) -> None:
        try:
            value = json.loads(strip_trailing_commas(raw))
        except json.JSONDecodeError:
            self.broken.append(raw)
            return
        if isinstance(value, dict):
            self.count += 1
            found.append(value)
        else:  # pragma: no cover - the scanner only cuts at object boundaries
            self.broken.append(raw)


__all__ = ["JSONReadError", "StepExtractor", "read_json", "read_plan_json", "strip_trailing_commas"]
