"""Read the JSON a model wrote, tolerantly, and pull step objects out of a plan while it is still streaming.

Models asked for JSON without native structured output wrap it in code fences or prose, leave trailing
commas, and reason in ``<think>`` blocks first. :func:`read_json` copes with all of these (see
:mod:`orchestrator.model_answers`); it never guesses beyond that (no quote repair, no completion of a cut
document, no choice between two objects), so a broken answer is an error the planner sends back to the
model. A refusal is a :class:`RefusalAnswer`, so the planner can say the model declined.

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

from orchestrator.model_answers import REASONING_TAGS, json_objects, refusal, strip_reasoning, strip_trailing_commas

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_OPEN_TAG = re.compile(r"\{|<(" + "|".join(REASONING_TAGS) + r")(?:\s[^>]*)?>", re.IGNORECASE)


class JSONReadError(ValueError):
    """The text holds no readable JSON object; the message says why, for the model to fix."""


REFUSED = "refused"
"""The issue code of an answer in which the model declined the request."""


class RefusalAnswer(JSONReadError):
    """The model declined the task instead of answering; `.said` is what it wrote."""

    def __init__(self, said: str):
        self.said = said
        super().__init__(f"the model declined instead of answering: {said!r}")


def read_json(text: str) -> Any:
    """Parse the one JSON object out of a model's answer.

    Accepts: plain JSON; JSON inside a Markdown code fence; JSON with prose before or after it; trailing
    commas before ``}`` or ``]``; ``<think>``/``<thinking>``/``<reasoning>`` blocks anywhere around it.

    Raises:
        RefusalAnswer: the model declined the task.
        JSONReadError: nothing in the text parses as a JSON object, or several objects do (none is taken).
    """
    if not text.strip():
        raise JSONReadError("the answer was empty; expected a JSON object")
    try:  # plain JSON as it is (a "<think>" inside one of its strings is just text)
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    visible = strip_reasoning(text)
    stripped = visible.strip()
    if not stripped:
        raise JSONReadError("the answer holds only reasoning (a <think> block), no JSON object")
    said = refusal(stripped)
    if said is not None:
        raise RefusalAnswer(said)
    last_error = ""
    for attempt in (stripped, strip_trailing_commas(stripped)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError as exc:
            last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    objects, unclosed = json_objects(visible)
    if len(objects) > 1:
        raise JSONReadError(
            f"the answer holds {len(objects)} separate JSON objects; none was taken: answer with exactly one"
        )
    if objects:
        return objects[0]
    for fenced in _FENCE.finditer(visible):  # a fenced value that is not an object (a list, say)
        for attempt in (fenced.group(1).strip(), strip_trailing_commas(fenced.group(1).strip())):
            try:
                return json.loads(attempt)
            except json.JSONDecodeError as exc:
                last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if "{" not in visible:
        raise JSONReadError("the answer holds no JSON object")
    if unclosed:
        raise JSONReadError("the JSON object is not complete (a closing brace is missing)")
    raise JSONReadError(f"the answer is not valid JSON: {last_error}")


def read_plan_json(text: str) -> Any:
    """:func:`read_json`, plus unwrapping ``{"plan": {...}}`` when the model nested the plan one level."""
    data = read_json(text)
    if isinstance(data, Mapping) and "steps" not in data and len(data) == 1:
        (inner,) = data.values()
        if isinstance(inner, Mapping) and "steps" in inner:
            return dict(inner)
    return data


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
    piece (each parsed, trailing commas tolerated). Text before the first ``{`` (prose, a code fence,
    ``<think>`` blocks, whose braces are not the plan's) is skipped. A step that does not parse is
    returned as :attr:`broken` text and skipped, so the final validation (and the repair loop) deals with it.

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
            if not self._started:
                if not self._skip_preamble(text):
                    break
                continue
            self._scan(text, self._pos, found)
            self._pos += 1
        return found

    def _skip_preamble(self, text: str) -> bool:
        """Before the plan's ``{``: skip prose and whole reasoning blocks; False to wait for more text."""
        match = _OPEN_TAG.search(text, self._pos)
        if match is None:
            self._pos = max(self._pos, len(text) - 16)  # the tail may be the start of a tag
            return False
        if match.group(0) == "{":
            self._started = True
            self._stack.append(_Frame(is_object=True))
            self._pos = match.end()
            return True
        closing = re.compile(rf"</{match.group(1)}\s*>", re.IGNORECASE).search(text, match.end())
        if closing is None:
            self._pos = match.start()  # still reasoning: wait for the block to close
            return False
        self._pos = closing.end()
        return True

    @property
    def text(self) -> str:
        """Everything fed so far."""
        return self._text

    def _scan(self, text: str, index: int, found: list[dict[str, Any]]) -> None:
        ch = text[index]
        if self._in_string:
            self._scan_string(text, index, ch)
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


__all__ = ["JSONReadError", "RefusalAnswer", "StepExtractor", "read_json", "read_plan_json", "strip_trailing_commas"]
