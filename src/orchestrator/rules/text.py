"""Keyword rules for text tasks: lexicon sentiment, label matching, aspect extraction, a lead summary.

The ``small_model`` tool's answer when no model is on, and the keyword tier of the small-model cascade
for ``classify`` and ``sentiment`` (:func:`keyword_label`, :func:`keyword_sentiment`). The lexicon is
package data (``data/language.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.errors import ToolError
from orchestrator.rules.models import CategorizedItem, ParsedReceipt

__all__ = [
    "TextResult",
    "classify",
    "extract",
    "keyword_label",
    "keyword_sentiment",
    "lexicon",
    "sentiment",
    "summarize",
]

_WORD = re.compile(r"[a-z][a-z'-]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@cache
def lexicon() -> dict[str, Any]:
    """The lexicon: positive, negative and negating words, label synonyms, aspects (read once)."""
    data = resources.files("orchestrator.rules").joinpath("data/language.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    for suffix in ("ational", "ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


class TextResult(BaseModel):
    """What a text task returns; which fields are set depends on the task."""

    task: str
    label: str | None = None
    confidence: float = Field(default=0.0, ge=0, le=1)
    scores: dict[str, float] = Field(default_factory=dict)
    entities: list[str] = Field(default_factory=list)
    summary: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="extract: the fields the small model filled")
    items: list[CategorizedItem] = Field(default_factory=list, description="categorize: each item and its category")
    receipt: ParsedReceipt | None = Field(default=None, description="parse_items: the parsed receipt")
    mode: str = "keyword"


def sentiment(text: str) -> TextResult:
    """Lexicon sentiment with negation: positive, negative or neutral."""
    lex = lexicon()
    positive, negative, negators = set(lex["positive"]), set(lex["negative"]), set(lex["negators"])
    score = 0.0
    words = _words(text)
    for i, word in enumerate(words):
        polarity = 1.0 if word in positive else -1.0 if word in negative else 0.0
        if polarity and any(w in negators for w in words[max(0, i - 3) : i]):
            polarity = -polarity
        score += polarity
    hits = sum(1 for w in words if w in positive or w in negative)
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    confidence = min(1.0, 0.5 + abs(score) / (2 * max(hits, 1))) if hits else 0.4
    return TextResult(task="sentiment", label=label, confidence=round(confidence, 3), scores={"polarity": score})


def classify(text: str, labels: list[str]) -> TextResult:
    """Score each label by how many of its words (stemmed) and known synonyms appear in the text."""
    if not labels:
        raise ToolError("classify needs a non-empty list of labels")
    synonyms: dict[str, list[str]] = lexicon()["label_synonyms"]
    stems = [_stem(w) for w in _words(text)]
    joined = " ".join(stems)
    scores: dict[str, float] = {}
    for label in labels:
        terms = [" ".join(_stem(w) for w in _words(label))]
        terms += [" ".join(_stem(w) for w in _words(s)) for s in synonyms.get(label.lower(), [])]
        scores[label] = float(sum(joined.count(term) * len(term.split()) for term in terms if term))
    best = max(labels, key=lambda lab: scores[lab])
    total = sum(scores.values())
    if total == 0:
        return TextResult(task="classify", label=labels[-1] if "other" in labels[-1].lower() else None, scores=scores)
    return TextResult(task="classify", label=best, confidence=round(scores[best] / total, 3), scores=scores)


def extract(text: str, fields: list[str] | None = None) -> TextResult:
    """Key issues (known aspects mentioned in the text), plus amounts, dates and e-mail addresses."""
    aspects: dict[str, list[str]] = lexicon()["aspects"]
    stems = {_stem(w) for w in _words(text)}
    found = [name for name, words in aspects.items() if any(_stem(w) in stems for w in words)]
    wanted = set(fields or ["issues", "amounts", "emails"])
    entities = list(found) if "issues" in wanted else []
    if "amounts" in wanted:
        entities += re.findall(r"[$€£]\s?\d+(?:[.,]\d{2})?", text)
    if "emails" in wanted:
        entities += re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text)
    return TextResult(task="extract", entities=entities, confidence=0.6 if entities else 0.3)


def summarize(text: str, sentences: int = 2) -> TextResult:
    """Extractive summary: the first sentences."""
    parts = [p.strip() for p in _SENTENCE.split(text.strip()) if p.strip()]
    return TextResult(task="summarize", summary=" ".join(parts[:sentences]), confidence=0.5)


def keyword_label(text: str, labels: Sequence[str]) -> tuple[str, float]:
    """:func:`classify` as (label, confidence), for the cascade's keyword tier (the last label when nothing matched)."""
    result = classify(text, list(labels))
    return (result.label or labels[-1], result.confidence if result.label else 0.0)


def keyword_sentiment(text: str, labels: Sequence[str]) -> tuple[str, float]:
    """:func:`sentiment` as (label, confidence), for the cascade's keyword tier."""
    result = sentiment(text)
    label = result.label if result.label in labels else labels[-1]
    return (label or labels[-1], result.confidence)
