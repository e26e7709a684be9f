"""Category accuracy: run a categorizer back-end over labelled names and score it.

Labelled files are JSON Lines (``{"name": ..., "category": ...}`` per line) or CSV with a header; the
column names are arguments, so the Instacart products file works as it is
(``name_col="product_name", label_col="department"``). The labels found in the test file are the
taxonomy. An optional *examples* file (a training split, never the test names) gives labelled examples.

Back-ends:

* ``keywords``: keyword rules alone. With examples, the rules are learned from them
  (:func:`~orchestrator.rules.categories.learn_rules`: which words and phrases go with which
  label, and how reliably), so "keywords alone" is a fair baseline on any taxonomy; without examples the
  shipped expense rules are used.
* ``embedded``: the MiniLM classifier alone, with the examples (or, without them, the shipped rules'
  keywords as examples, as the categorizer tool does) and the label descriptions.
* ``cascade``: keywords when they are sure (confidence >= `threshold`), else embedded (with examples,
  embedded also when neither is sure: it learned from the taxonomy's own labelled names).

For development, :func:`split_labelled` writes a stratified train/test split as JSON Lines.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.errors import ConfigurationError, InputError
from orchestrator.rules.categories import KeywordRules, KeywordTier, learn_rules, load_rules
from orchestrator.settings import current_settings
from orchestrator.small_model_worker.cascade import DEFAULT_THRESHOLD, Cascade, Prediction, Tier

__all__ = [
    "CategoryEvalReport",
    "Confusion",
    "TierScore",
    "evaluate_categories",
    "read_labelled",
    "split_labelled",
]

Backend = Literal["cascade", "keywords", "embedded"]
BACKENDS: tuple[str, ...] = ("cascade", "keywords", "embedded")


class TierScore(BaseModel):
    """How many test names one tier answered, and how many of those it got right."""

    n: int
    accuracy: float


class Confusion(BaseModel):
    """A label the back-end confused with another, and how often."""

    expected: str
    got: str
    count: int


class CategoryEvalReport(BaseModel):
    """Accuracy over a labelled test file, overall and per answering tier, and the most confused pairs."""

    n: int = Field(description="test names evaluated")
    accuracy: float
    tiers: dict[str, TierScore] = Field(default_factory=dict, description="per answering tier")
    confusions: list[Confusion] = Field(default_factory=list, description="most frequent (expected, got) errors")


def read_labelled(path: Path, *, name_col: str = "name", label_col: str = "category") -> list[tuple[str, str]]:
    """(name, label) pairs from a JSON Lines or CSV file; rows with an empty name or label are skipped.

    Raises:
        InputError: The file is missing, a JSON line does not parse, or a column is missing.
    """
    if not path.is_file():
        raise InputError(f"labelled file not found: {path}")
    rows: list[dict[str, object]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [col for col in (name_col, label_col) if col not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: no column {missing[0]!r}; columns are {reader.fieldnames}")
            rows.extend(reader)
    else:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}:{exc.colno}: not a JSON object: {exc.msg}") from exc
            if not isinstance(row, dict) or name_col not in row or label_col not in row:
                raise InputError(f"{path}:{number}: expected an object with {name_col!r} and {label_col!r}")
            rows.append(row)
    pairs = [(str(row.get(name_col) or "").strip(), str(row.get(label_col) or "").strip()) for row in rows]
    return [(name, label) for name, label in pairs if name and label]


def split_labelled(
    source: Path,
    out_dir: Path,
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    name_col: str = "name",
    label_col: str = "category",
) -> tuple[Path, Path]:
    """Write a stratified random split of a labelled file as ``train.jsonl`` and ``test.jsonl`` in `out_dir`.

    Each label keeps about `test_fraction` of its names in the test file (at least one when it has two or
    more). Lines are ``{"name": ..., "category": ...}``. Returns (train path, test path).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigurationError(f"test_fraction must be between 0 and 1, not {test_fraction}")
    by_label: dict[str, list[str]] = defaultdict(list)
    for name, label in read_labelled(source, name_col=name_col, label_col=label_col):
        by_label[label].append(name)
    rng = random.Random(seed)
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for label in sorted(by_label):
        names = by_label[label]
        rng.shuffle(names)
        n_test = round(len(names) * test_fraction)
        if len(names) >= 2:
            n_test = min(max(n_test, 1), len(names) - 1)
        test.extend((name, label) for name in names[:n_test])
        train.extend((name, label) for name in names[n_test:])
    rng.shuffle(train)
    rng.shuffle(test)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "train.jsonl", out_dir / "test.jsonl")
    for path, pairs in zip(paths, (train, test), strict=True):
        with path.open("w", encoding="utf-8") as handle:
            for name, label in pairs:
                handle.write(json.dumps({"name": name, "category": label}, ensure_ascii=False) + "\n")
    return paths


def _tiers(
    backend: str,
    examples: list[tuple[str, str]] | None,
    threshold: float,
    cache_dir: Path,
) -> Tier:
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown back-end {backend!r}; choose one of {', '.join(BACKENDS)}")
    defaults = load_rules()
    rules: KeywordRules = learn_rules(examples) if examples else defaults
    keyword = KeywordTier(rules)
    if backend == "keywords":
        return keyword
    from orchestrator.small_model_worker.backends.embedded import EmbeddedClassifier

    if examples:  # the examples define the labels; the expense descriptions would only mislead
        embedded = EmbeddedClassifier(examples=examples, cache_dir=cache_dir)
    else:
        embedded = EmbeddedClassifier(
            examples=defaults.examples(), descriptions=defaults.descriptions(), cache_dir=cache_dir
        )
    if backend == "embedded":
        return embedded
    # Learned from labelled examples, the embedded tier's unsure answers beat the keywords' unsure ones.
    return Cascade([keyword, embedded], threshold=threshold, unsure="last" if examples else "most_confident")


async def evaluate_categories(
    test: Path,
    *,
    examples: Path | None = None,
    backend: Backend | str = "cascade",
    name_col: str = "name",
    label_col: str = "category",
    threshold: float = DEFAULT_THRESHOLD,
    cache_dir: Path | None = None,
    max_confusions: int = 10,
) -> CategoryEvalReport:
    """Categorize every name in `test` with `backend` and score it against the labels.

    Args:
        test: Labelled names (JSON Lines or CSV); its labels are the taxonomy.
        examples: Labelled training names, same format and columns; never the test names.
        backend: ``cascade``, ``keywords`` or ``embedded``.
        name_col: Column (or JSON key) of the names.
        label_col: Column (or JSON key) of the labels.
        threshold: Cascade confidence at which the keyword tier's answer is final.
        cache_dir: Embedding cache folder; default ``<orchestrator_home>/cache``.
        max_confusions: How many confused pairs to report.

    Returns:
        The report; ``report.model_dump()`` gives ``{"n", "accuracy", "tiers", "confusions"}``.
    """
    pairs = read_labelled(test, name_col=name_col, label_col=label_col)
    if not pairs:
        raise InputError(f"{test}: no labelled names")
    train = read_labelled(examples, name_col=name_col, label_col=label_col) if examples is not None else None
    labels = sorted({label for _, label in pairs})
    folder = cache_dir if cache_dir is not None else current_settings().orchestrator_home / "cache"
    classifier = _tiers(backend, train, threshold, folder)
    predictions = await classifier.classify([name for name, _ in pairs], labels)
    return score(pairs, predictions, max_confusions=max_confusions)


def score(
    pairs: list[tuple[str, str]], predictions: Sequence[Prediction | None], *, max_confusions: int = 10
) -> CategoryEvalReport:
    """The report for predictions against (name, label) pairs (None: no answer, counted wrong)."""
    per_tier: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    confusions: Counter[tuple[str, str]] = Counter()
    correct = 0
    for (_, expected), answer in zip(pairs, predictions, strict=True):
        prediction = answer if answer is not None else Prediction("(none)", 0.0, "none")
        hit = prediction.label == expected
        correct += hit
        tally = per_tier[prediction.tier or "unknown"]
        tally[0] += 1
        tally[1] += hit
        if not hit:
            confusions[(expected, prediction.label)] += 1
    n = len(pairs)
    return CategoryEvalReport(
        n=n,
        accuracy=round(correct / n, 4) if n else 0.0,
        tiers={
            tier: TierScore(n=total, accuracy=round(right / total, 4))
            for tier, (total, right) in sorted(per_tier.items())
        },
        confusions=[
            Confusion(expected=e, got=g, count=c)
            for (e, g), c in sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))[:max_confusions]
        ],
    )
