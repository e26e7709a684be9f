"""Expense categories by keyword rules from a data file: the cascade's keyword tier (no model, no I/O).

The keyword tier needs nothing but the standard library. Its rules are package data
(``data/categories.json``): per category a description and keywords/patterns with weights in (0, 1],
read as "how sure this term alone makes us". Users merge their own file over the defaults
(:func:`load_rules` with ``rules_path``), or learn rules for another taxonomy from labelled examples
(:func:`learn_rules`: token and phrase statistics, in the same format, so they can be saved and edited).

Scoring an item name: every matching keyword or pattern adds evidence to its category by noisy-OR,
``p = 1 - prod(1 - w)``. The best category wins; its confidence is ``p_best * p_best / sum(p)``, so a
single decisive term ("beer", 0.95) gives 0.95 and two categories matching equally halve it. No match
gives the fallback category (``other``) with confidence 0.

:class:`KeywordTier` is these rules as the first tier of the small-model cascade
(:meth:`orchestrator.small_model_worker.SmallModelWorker.categorize_items`); the ``expense_categorizer``
tool (:mod:`orchestrator.workers.receipts.tools`) routes between the two.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator

from orchestrator.errors import ConfigurationError
from orchestrator.rules.models import CategorizedItem, CategorizedItems, LineItem
from orchestrator.rules.tier import Prediction

__all__ = [
    "DEFAULT_TAXONOMY",
    "CategoryRules",
    "KeywordRules",
    "KeywordTier",
    "categorize_with_keywords",
    "categorized",
    "learn_rules",
    "load_rules",
    "taxonomy_labels",
]

logger = logging.getLogger(__name__)

DEFAULT_TAXONOMY: tuple[str, ...] = (
    "food",
    "beverage",
    "groceries",
    "alcohol",
    "household",
    "office_supplies",
    "electronics",
    "clothing",
    "health",
    "transport",
    "fuel",
    "lodging",
    "entertainment",
    "services",
    "other",
)
"""The expense categories the default rules cover."""

DEFAULT_WEIGHT = 0.8
"""Weight of a keyword given in a plain list, without a weight."""

_MAX_PHRASE = 4  # longest keyword phrase, in words
# Units and pack sizes never head an item name ("Kibble 5kg" is kibble), whatever they match.
_UNITS = frozenset(
    "kg g gr lb lbs oz fl ml l ltr gal gallon qt quart pt pint pk pack ct pc pcs ea each dozen doz".split()
)
_TOKEN = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_SQUASHED_MIN = 8  # in a name without spaces, words at least this long are searched for keywords inside
_LONG_WORD = 15  # in any name, words at least this long are too
_SQUASHED_DISCOUNT = 0.85  # a keyword found inside a word is a little less sure than a whole word


def _singular(word: str) -> str:
    """A light, consistent singular form, so 'cookies' matches 'cookie' and 'boxes' matches 'box'."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ie") and len(word) > 4:
        return word[:-2] + "y"
    if word.endswith("oes") and len(word) > 5:
        return word[:-2]
    if word.endswith(("xes", "ches", "shes", "sses", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    return [_singular(w) for w in _TOKEN.findall(text.lower())]


def _split_name(name: str) -> str:
    """Split camelCase and letter-digit runs, as receipts print them: 'BaconCheeseburger' -> 'Bacon Cheeseburger'."""
    return _CAMEL.sub(" ", name)


def _squashed_words(name: str) -> list[str]:
    """Words that may be several words run together (OCR and receipt printers drop spaces)."""
    shortest = _SQUASHED_MIN if not any(ch.isspace() for ch in name.strip()) else _LONG_WORD
    return [w for w in _TOKEN.findall(_split_name(name).lower()) if len(w) >= shortest and w.isalpha()]


def _phrases(words: Sequence[str], longest: int = _MAX_PHRASE) -> set[str]:
    """Every run of 1..`longest` consecutive words, joined by single spaces."""
    return {" ".join(words[i : i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)}


def normalize_term(term: str) -> str:
    """The form a keyword is matched in: lower-case words, singular, joined by single spaces."""
    return " ".join(_words(term))


class CategoryRules(BaseModel):
    """The rules for one category."""

    description: str = Field(default="", description="what belongs here, in words (the embedded tier reads it)")
    keywords: dict[str, float] = Field(default_factory=dict, description="term -> weight in [0, 1]; 0 removes")
    patterns: dict[str, float] = Field(default_factory=dict, description="regular expression -> weight in [0, 1]")
    examples: list[str] = Field(
        default_factory=list,
        description="item names as receipts print them (the embedded tier learns from them; keywords do not)",
    )

    @field_validator("keywords", "patterns", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        if isinstance(value, list):  # a plain list of terms: each gets the default weight
            return dict.fromkeys(value, DEFAULT_WEIGHT)
        return value

    @field_validator("keywords", "patterns")
    @classmethod
    def _in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [term for term, weight in value.items() if not 0.0 <= weight <= 1.0]
        if bad:
            raise ValueError(f"weights must be between 0 and 1: {', '.join(repr(b) for b in bad[:5])}")
        return value


class KeywordRules(BaseModel):
    """Keyword rules for a taxonomy: categories, and the category to give when nothing matches."""

    about: str = ""
    fallback: str | None = Field(default=None, description="category when nothing matches (default: 'other')")
    categories: dict[str, CategoryRules] = Field(default_factory=dict)

    _compiled: _Compiled | None = PrivateAttr(default=None)

    def merged(self, overrides: KeywordRules) -> KeywordRules:
        """These rules with `overrides` laid over them: terms added or re-weighted, weight 0 removes a term."""
        categories = {name: rules.model_copy(deep=True) for name, rules in self.categories.items()}
        for name, extra in overrides.categories.items():
            base = categories.get(name, CategoryRules())
            keywords = {k: w for k, w in (base.keywords | extra.keywords).items() if w > 0}
            patterns = {p: w for p, w in (base.patterns | extra.patterns).items() if w > 0}
            categories[name] = CategoryRules(
                description=extra.description or base.description,
                keywords=keywords,
                patterns=patterns,
                examples=list(dict.fromkeys(base.examples + extra.examples)),
            )
        return KeywordRules(about=self.about, fallback=overrides.fallback or self.fallback, categories=categories)

    def descriptions(self) -> dict[str, str]:
        """Category -> description (its name in words when it has none)."""
        return {name: rules.description or name.replace("_", " ") for name, rules in self.categories.items()}

    def examples(self) -> dict[str, list[str]]:
        """Category -> labelled examples for the embedded tier: its example item names, then its keywords
        weighted 0.6 or more."""
        return {
            name: list(dict.fromkeys([*rules.examples, *(t for t, w in rules.keywords.items() if w >= 0.6)]))
            for name, rules in self.categories.items()
        }

    def scores(self, name: str) -> dict[str, float]:
        """Evidence per category for one item name (noisy-OR of the matching terms' weights)."""
        return self._matcher().scores(name)

    def predict(self, names: Iterable[str], labels: Sequence[str] | None = None) -> list[Prediction]:
        """The best category among `labels` (default: all) for each name, with a confidence."""
        allowed = list(labels) if labels is not None else list(self.categories)
        if not allowed:
            raise ConfigurationError("a taxonomy needs at least one category")
        fallback = self._fallback(allowed)
        predictions: list[Prediction] = []
        for name in names:
            scores = {label: p for label, p in self.scores(name).items() if label in allowed}
            if not scores:
                predictions.append(Prediction(fallback, 0.0, "keyword"))
                continue
            best = max(scores, key=lambda label: (scores[label], -allowed.index(label)))
            confidence = scores[best] * scores[best] / sum(scores.values())
            predictions.append(Prediction(best, round(confidence, 4), "keyword"))
        return predictions

    def _fallback(self, labels: Sequence[str]) -> str:
        for candidate in (self.fallback, "other"):
            if candidate is not None and candidate in labels:
                return candidate
        return labels[-1]

    def _matcher(self) -> _Compiled:
        if self._compiled is None:
            self._compiled = _Compiled.build(self)
        return self._compiled


@dataclass(frozen=True)
class _Compiled:
    """Keyword lookup table and compiled patterns, built once per rules object."""

    keywords: dict[str, list[tuple[str, float]]]
    patterns: list[tuple[re.Pattern[str], str, float]]
    longest: int
    squashable: list[tuple[str, str, float]]  # (keyword without spaces, category, weight), 4+ letters
    widest: int  # letters in the longest squashable keyword

    @classmethod
    def build(cls, rules: KeywordRules) -> _Compiled:
        best: dict[tuple[str, str], float] = {}
        for category, category_rules in rules.categories.items():
            for term, weight in category_rules.keywords.items():
                key = (normalize_term(term), category)
                if key[0] and weight > 0:
                    best[key] = max(weight, best.get(key, 0.0))
        keywords: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for (term, category), weight in best.items():
            keywords[term].append((category, weight))
        patterns: list[tuple[re.Pattern[str], str, float]] = []
        for category, category_rules in rules.categories.items():
            for pattern, weight in category_rules.patterns.items():
                try:
                    patterns.append((re.compile(pattern, re.IGNORECASE), category, weight))
                except re.error as exc:
                    raise ConfigurationError(f"category {category!r}: bad pattern {pattern!r}: {exc}") from exc
        longest = max((term.count(" ") + 1 for term in keywords), default=1)
        squashable = sorted(
            (
                (term.replace(" ", ""), category, weight)
                for (term, category), weight in best.items()
                if len(term.replace(" ", "")) >= 4 and term.replace(" ", "").isalpha()
            ),
            key=lambda entry: -len(entry[0]),
        )
        widest = max((len(term) for term, _, _ in squashable), default=0)
        return cls(dict(keywords), patterns, min(longest, _MAX_PHRASE), squashable, widest)

    def scores(self, name: str) -> dict[str, float]:
        found: dict[tuple[str, str], float] = {}  # (term, category) -> weight, each term counted once
        words = _words(_split_name(name))
        # Longest match wins: "root beer" hides "beer". covered: start -> furthest end of a match from
        # there; a match is at most `longest` words, so only that many starts can hold a span around i.
        covered: dict[int, int] = {}
        ends: dict[str, int] = {}  # term -> where its match ends, for the head-noun rule below
        for n in range(min(self.longest, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                term = " ".join(words[i : i + n])
                matches = self.keywords.get(term)
                if matches and not any(covered.get(s, -1) >= i + n for s in range(max(0, i - self.longest + 1), i + 1)):
                    covered[i] = max(covered.get(i, -1), i + n)
                    ends[term] = i + n
                    found.update(((term, category), w) for category, w in matches)
        if len({category for _, category in found}) > 1:
            # In an English noun phrase the last noun is the head: a "Blueberry Muffin" is a muffin, an
            # "Apple Pie" a pie. When the words disagree, the rightmost match counts as if seen twice.
            heads = [end for term, end in ends.items() if term not in _UNITS]
            head = max(heads, default=-1)
            for key, weight in found.items():
                if ends.get(key[0]) == head:
                    found[key] = 1.0 - (1.0 - weight) ** 2
        for word in _squashed_words(name):
            # start -> furthest end of a keyword found there; keywords are at most `widest` letters long,
            # so only that many starts can hold a span around a new one (longest keywords go first).
            spans: dict[int, int] = {}
            for term, category, weight in self.squashable:
                start = word.find(term)
                while start >= 0:
                    end = start + len(term)
                    lowest = max(0, end - self.widest)
                    inside = any(
                        spans.get(s, -1) >= end and (s, spans[s]) != (start, end) for s in range(lowest, start + 1)
                    )
                    if not inside:
                        spans[start] = max(spans.get(start, -1), end)
                        found.setdefault((term, category), weight * _SQUASHED_DISCOUNT)
                    start = word.find(term, start + 1)
        miss: dict[str, float] = {}  # category -> product of (1 - w): the chance every match is wrong
        for (_, category), weight in found.items():
            miss[category] = miss.get(category, 1.0) * (1.0 - weight)
        texts = {name.lower(), _split_name(name).lower()}
        for pattern, category, weight in self.patterns:
            if weight > 0 and any(pattern.search(text) for text in texts):
                miss[category] = miss.get(category, 1.0) * (1.0 - weight)
        return {category: 1.0 - m for category, m in miss.items() if m < 1.0}


# -- loading and learning rules -------------------------------------------------------------------


@lru_cache(maxsize=1)
def _default_rules() -> KeywordRules:
    text = files("orchestrator.rules").joinpath("data/categories.json").read_text(encoding="utf-8")
    return KeywordRules.model_validate_json(text)


def load_rules(rules_path: str | Path | None = None, *, defaults: bool = True) -> KeywordRules:
    """Keyword rules: the defaults, with the user's file (same layout as ``data/categories.json``) merged over them.

    Args:
        rules_path: A JSON file of rules. Its categories add to or override the defaults' keywords and
            patterns (a weight of 0 removes a term); new categories are added.
        defaults: Start from the shipped rules. False: use only the file.

    Raises:
        ConfigurationError: The file is missing, is not JSON, or does not have the rules' layout.
    """
    base = _default_rules() if defaults else KeywordRules()
    if rules_path is None:
        return base
    path = Path(rules_path)
    try:
        user = KeywordRules.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigurationError(f"keyword rules file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}:{exc.lineno}:{exc.colno}: keyword rules are not valid JSON: {exc.msg}"
        ) from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigurationError(f"{path}: keyword rules: {where}: {error['msg']}") from exc
    return base.merged(user)


def learn_rules(
    examples: Iterable[tuple[str, str]],
    *,
    min_count: int = 2,
    prior_strength: float = 1.0,
    min_weight: float = 0.2,
    max_words: int = 2,
) -> KeywordRules:
    """Keyword rules learned from labelled names: each word or phrase that is frequent and telling enough.

    A term seen in `n` names, `k` of them labelled `c`, gets weight ``k / (n + prior_strength)`` for
    `c`, so a term must be both frequent and pure to be decisive: 19 of 19 gives 0.95, 1 of 1 never
    qualifies (`min_count`), 3 of 6 gives 0.43. The fallback is the most frequent label.

    Args:
        examples: (name, label) pairs.
        min_count: Ignore terms seen in fewer names.
        prior_strength: Pseudo-count that shrinks the weight of rare terms.
        min_weight: Drop (term, label) weights below this.
        max_words: Longest phrase learned, in words.
    """
    term_counts: Counter[str] = Counter()
    term_labels: dict[str, Counter[str]] = defaultdict(Counter)
    label_counts: Counter[str] = Counter()
    for name, label in examples:
        label_counts[label] += 1
        for term in _phrases(_words(name), max_words):
            term_counts[term] += 1
            term_labels[term][label] += 1
    categories: dict[str, dict[str, float]] = {label: {} for label in label_counts}
    for term, n in term_counts.items():
        if n < min_count:
            continue
        for label, k in term_labels[term].items():
            weight = k / (n + prior_strength)
            if weight >= min_weight:
                categories[label][term] = round(weight, 3)
    fallback = label_counts.most_common(1)[0][0] if label_counts else None
    return KeywordRules(
        about=f"learned from {sum(label_counts.values())} labelled names",
        fallback=fallback,
        categories={label: CategoryRules(keywords=terms) for label, terms in sorted(categories.items())},
    )


# -- the keyword tier and categorizing ---------------------------------------------------------------------------


class KeywordTier:
    """The keyword rules as a cascade tier: instant, free, and sure only when a telling term matches."""

    def __init__(self, rules: KeywordRules | None = None, *, name: str = "keyword") -> None:
        self.rules = rules if rules is not None else load_rules()
        self.name = name

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        """Predict with the rules (no I/O, no model)."""
        return [Prediction(p.label, p.confidence, self.name) for p in self.rules.predict(names, labels)]


def taxonomy_labels(categories: Sequence[str] | None) -> list[str]:
    """The categories to choose from: `categories` without repeats, or :data:`DEFAULT_TAXONOMY`.

    Raises:
        ConfigurationError: a category is empty.
    """
    labels = list(dict.fromkeys(categories)) if categories else list(DEFAULT_TAXONOMY)
    if any(not label.strip() for label in labels):
        raise ConfigurationError("taxonomy categories must be non-empty strings")
    return labels


def categorized(items: Sequence[LineItem], predictions: Sequence[Prediction], default_mode: str) -> CategorizedItems:
    """Items with their predicted categories, totals per category and how many items each mode answered."""
    categorized: list[CategorizedItem] = []
    totals: dict[str, float] = {}
    modes: Counter[str] = Counter()
    for item, prediction in zip(items, predictions, strict=True):
        mode = prediction.tier or default_mode
        categorized.append(
            CategorizedItem(
                **item.model_dump(),
                category=prediction.label,
                confidence=min(1.0, max(0.0, round(prediction.confidence, 4))),
                mode=mode,
            )
        )
        totals[prediction.label] = totals.get(prediction.label, 0.0) + item.amount
        modes[mode] += 1
    return CategorizedItems(
        items=categorized,
        totals={label: round(amount, 2) for label, amount in totals.items()},
        total=round(math.fsum(item.amount for item in items), 2),
        modes=dict(modes),
    )


def categorize_with_keywords(
    items: Sequence[LineItem], taxonomy: Sequence[str] | None = None, rules: KeywordRules | None = None
) -> CategorizedItems:
    """Categorize line items with keyword rules alone: a pure function, no model, no I/O after the rules load.

    Args:
        items: The line items.
        taxonomy: Allowed categories (default :data:`DEFAULT_TAXONOMY`); rules for others are ignored.
        rules: Keyword rules (default: the shipped rules, :func:`load_rules`).
    """
    rules = rules if rules is not None else load_rules()
    predictions = rules.predict([item.name for item in items], taxonomy_labels(taxonomy))
    return categorized(items, predictions, "keyword")
