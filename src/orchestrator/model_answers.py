"""Reading what a model wrote, whoever asked: the planner (a plan) and the small-model runner (labels, fields).

Model output is hostile input. The shapes handled here, each found in real answers:

- **reasoning blocks** (``<think>``, ``<thinking>``, ``<reasoning>``) before or around the JSON are skipped;
  an answer cut while still reasoning holds no JSON;
- **several top-level JSON objects** (two drafts, an example then the answer): none is taken, the model is
  told how many it wrote (:func:`json_objects` finds them);
- **refusals** ("I'm sorry, but I can't help with that"): recognised (:func:`refusal`), so the caller can
  retry once and then say the model declined instead of reporting a format error;
- **labels** written loosely (``"Food."``, ``" FOOD "``, ``"the answer is food"``) are mapped onto the known
  label (:func:`match_label`); prose naming two different labels is ambiguous, never guessed;
- **confidences** as strings (``"0.9"``, ``"90%"``) are parsed, anything else is left empty
  (:func:`read_confidence`), never invented.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from orchestrator._json_text import outside_strings

__all__ = [
    "AmbiguousLabel",
    "json_objects",
    "match_label",
    "read_confidence",
    "refusal",
    "strip_reasoning",
    "strip_trailing_commas",
]

REASONING_TAGS = ("think", "thinking", "reasoning")
_OPEN = re.compile(r"<(think|thinking|reasoning)(?:\s[^>]*)?>", re.IGNORECASE)
_CLOSE = {tag: re.compile(rf"</{tag}\s*>", re.IGNORECASE) for tag in REASONING_TAGS}
_STRAY_CLOSE = re.compile(r"</(?:think|thinking|reasoning)\s*>", re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """`text` without its reasoning blocks.

    A block that is opened and never closed runs to the end (the model was cut while reasoning). A closing
    tag with no opening one (some servers drop the opening tag) ends a block that began at the start.
    """
    out: list[str] = []
    pos = 0
    first_open = _OPEN.search(text)
    stray = _STRAY_CLOSE.search(text)
    if stray is not None and (first_open is None or stray.start() < first_open.start()):
        pos = stray.end()
    while True:
        opening = _OPEN.search(text, pos)
        if opening is None:
            out.append(text[pos:])
            break
        out.append(text[pos : opening.start()])
        closing = _CLOSE[opening.group(1).lower()].search(text, opening.end())
        if closing is None:
            break
        pos = closing.end()
    return "".join(out)


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


def _balanced_end(text: str, start: int) -> int | None:
    """The end of the balanced ``{...}`` opening at `start` (strings respected), or None if it never closes."""
    depth = 0
    for index, ch in outside_strings(text, start):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def json_objects(text: str) -> tuple[list[dict[str, Any]], bool]:
    """Every top-level JSON object in `text` (prose, fences and trailing commas around them tolerated).

    Returns (objects, unclosed): the objects that parse, in order, and whether a ``{`` was left open at the
    end (a cut answer). A balanced ``{...}`` that does not parse (a brace in prose, or a broken object) is
    skipped whole: the objects inside a broken one are not top-level objects.
    """
    found: list[dict[str, Any]] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return found, False
        end = _balanced_end(text, start)
        if end is None:
            return found, True
        chunk = text[start:end]
        value: Any = None
        for attempt in (chunk, strip_trailing_commas(chunk)):
            try:
                value = json.loads(attempt)
                break
            except json.JSONDecodeError:
                continue
        if isinstance(value, dict):
            found.append(value)
        pos = end


_REFUSAL = re.compile(
    r"\b(?:"
    r"I(?:'m| am) (?:sorry|afraid)\b[^.{]{0,80}\b(?:can(?:no|')t|cannot|unable|not able|won't|will not)"
    r"|I (?:can(?:no|')t|cannot|won't|will not|must decline to|am unable to|'m unable to|'m not able to)"
    r" (?:help|assist|comply|do that|provide|create|write|complete|fulfil|fulfill|process|support|generate)"
    r"|I (?:must|have to) (?:decline|refuse)"
    r"|(?:this|that|the) request (?:violates|goes against|is against)"
    r")",
    re.IGNORECASE,
)


def refusal(text: str) -> str | None:
    """The model's words when `text` declines the task (and holds no JSON object), else None."""
    visible = strip_reasoning(text).strip()
    if not visible or "{" in visible:
        return None
    match = _REFUSAL.search(visible[:600])
    if match is None:
        return None
    return " ".join(visible.split())[:200]


# -- labels and confidences ---------------------------------------------------------------------------

_EDGE = " \t\r\n.,;:!?\"'`*()[]{}<>«»“”‘’"


class AmbiguousLabel(ValueError):
    """An answer names more than one of the allowed labels."""

    def __init__(self, answer: str, labels: Sequence[str]):
        self.labels = list(labels)
        named = " and ".join(repr(label) for label in self.labels)
        super().__init__(f"{answer[:60]!r} names {named}; answer with exactly one label")


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", "_", text.strip(_EDGE).casefold())


def match_label(answer: Any, labels: Sequence[str]) -> str | None:
    """The allowed label `answer` names, or None when it names none.

    Exact first; then ignoring case, surrounding whitespace and punctuation, and ``_``/``-``/space between
    words; then one known label quoted in prose (``"The category is food."``).

    Raises:
        AmbiguousLabel: the prose names two or more different labels.
    """
    if not isinstance(answer, str):
        return None
    if answer in labels:
        return answer
    keyed = {_key(label): label for label in labels}
    direct = keyed.get(_key(answer))
    if direct is not None:
        return direct
    words = f"_{_key(answer)}_"
    words = re.sub(r"[^\w]+", "_", words)
    named = [label for key, label in keyed.items() if key and f"_{key}_" in words]
    # A label inside a longer label named too ("food" in "fast_food") is the longer one's word.
    named = [label for label in named if not any(label != other and _key(label) in _key(other) for other in named)]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise AmbiguousLabel(answer, named)
    return None


def read_confidence(value: Any) -> float | None:
    """A stated confidence in [0, 1]: a number, or a string such as ``"0.9"`` or ``"90%"``; else None.

    Out-of-range numbers are clipped (small models are loose with the scale); words (``"high"``), NaN and
    other types give None: a confidence is never invented.
    """
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            number = float(text.rstrip("%").strip())
        except ValueError:
            return None
        if percent:
            number /= 100
    if number is None or not math.isfinite(number):
        return None
    if 1 < number <= 100 and isinstance(value, str) and not value.strip().endswith("%"):
        return None  # "85" as text: a percentage or a mistake; not guessed
    return min(1.0, max(0.0, number))
