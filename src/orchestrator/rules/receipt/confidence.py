"""Per-field confidence: the chance that a parsed total, date, merchant or address is right.

The parser collects *evidence* for each field while it reads a receipt. For the total it is mostly second
readings of it, independent of the line it came from: subtotal plus the printed adjustments, the items'
sum, what was paid, the same amount printed again, the tax breakdown table; how many agree to the cent,
or only nearly (a misread digit); amounts that rule it out (a tax as big as it, a subtotal above it);
another labelled total the numbers confirm instead; a cash rounding; the label's strength. For the date,
whether a DATE label names it and how many other dates the receipt prints; for the header, whether a
registered company name, a postcode or a street word was found, and where, and how much the line-layout
model agrees: its company (address) probability of the lines the rules read the merchant (address) from.

A logistic model per field turns the evidence into a probability. Its weights are fitted on labelled
receipts (``orchestrator.evaluation.train_confidence``; vendor-held-out folds when evaluating, every
labelled receipt for the shipped weights in ``orchestrator/rules/data/receipt_confidence.json``), so a
confidence of 0.9 means about nine in ten such fields are right: ``orchestrator eval receipts --folds K``
prints the reliability table that checks it.

Without the weights file (or for a field it lacks) the total's confidence is the parser's consistency
score and any other field found gets 0.5: usable for ranking totals, not calibrated.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from pydantic import BaseModel, Field, ValidationError

from orchestrator.rules.models import LineItem
from orchestrator.rules.receipt._amounts import find_amounts
from orchestrator.rules.receipt._consistency import TOLERANCE, Adjustments, agrees
from orchestrator.rules.receipt._dates import find_dates
from orchestrator.rules.receipt._labels import TOTAL_TIER, Label
from orchestrator.rules.receipt._summary import Summary, close

FIELDS = ("total", "date", "merchant", "address")

FEATURES: dict[str, tuple[str, ...]] = {
    "total": (
        "found",
        "label_tier",
        "exact_readings",
        "near_only",
        "implausible",
        "below_items",
        "far_above_items",
        "rival_checks",
        "other_totals",
        "line_mismatches",
        "from_subtotal",
        "rounded",
        "items",
        "tendered_agrees",
        "consistency",
        "table_agrees",
        "table_disagrees",
    ),
    "date": ("found", "labelled", "other_dates", "ambiguous", "in_header"),
    "merchant": (
        "found",
        "legal_name",
        "first_line",
        "upper_case",
        "short",
        "address_found",
        "layout_company",
        "layout_absent",
    ),
    "address": ("found", "postcode", "street_word", "words", "long", "layout_address", "layout_absent"),
}
"""The evidence each field's confidence is computed from, in the order the weights file uses."""

_LEGAL_RE = re.compile(r"\b(?:SDN\.?\s*BHD|BHD|S/B|PTE\.?\s*LTD|LTD|INC|LLC|CORP|CO\.|ENTERPRISE|TRADING)\b", re.I)
_POSTCODE_RE = re.compile(r"(?<!\d)\d{5}(?!\d)|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b")
_STREET_RE = re.compile(
    r"\b(?:JALAN|JLN|LORONG|TAMAN|STREET|ST|ROAD|RD|AVE|AVENUE|BLVD|DRIVE|DR|LANE|LN|HWY|SUITE|WAY|PLAZA|NO|LOT)\b",
    re.I,
)


@dataclass(frozen=True)
class ReadSummary:
    """What the parser found, as the evidence functions need it."""

    lines: Sequence[str]
    labels: Sequence[Label | None]
    summary: Summary
    items: Sequence[LineItem]
    items_sum: float | None
    adjustments: Adjustments
    line_mismatches: int
    consistency: float
    merchant: str | None
    merchant_index: int | None
    address: str | None
    date: str | None
    layout_company: float | None = None
    """The layout model's company probability of the merchant's lines (None: no layout model)."""
    layout_address: float | None = None
    """The layout model's address probability of the address's lines (None: no layout model)."""


def _total_evidence(read: ReadSummary) -> list[float]:
    summary = read.summary
    total = summary.total
    if total is None:
        return [0.0] * len(FEATURES["total"])
    label = read.labels[summary.total_index] if summary.total_index is not None else None
    tier = TOTAL_TIER.get(label, 0) if isinstance(label, Label) else 0
    adjustments = read.adjustments
    tendered = [hit.value for hit in summary.hits if hit.label is Label.TENDERED]
    readings = _readings(read, total)
    exact = sum(1 for near in readings.values() if not near)
    totals = {round(hit.value, 2) for hit in summary.hits if hit.label in TOTAL_TIER and hit.value > 0}
    return [
        1.0,
        tier / 3,
        min(exact, 3) / 3,
        float(bool(readings) and not exact),
        float(_implausible(read, total)),
        float(read.items_sum is not None and read.items_sum > total + TOLERANCE and adjustments.discount == 0),
        float(read.items_sum is not None and read.items_sum > 0 and total > 3 * read.items_sum),
        float(_rival_checks(read, total)),
        min(len(totals - {round(total, 2)}), 3) / 3,
        min(read.line_mismatches, 3) / 3,
        float(summary.total_from_subtotal),
        float(summary.rounding != 0),
        min(len(read.items), 10) / 10,
        float(any(close(t, total) for t in tendered)),
        read.consistency,
        *_tax_table(read, total),
    ]


TABLE_LINES = 8
"""How many lines after a tax breakdown's heading are read as its table."""
TABLE_AMOUNTS = 24
"""At most this many of the table's amounts are paired (a long garbled line stays cheap)."""


def _tax_table(read: ReadSummary, total: float) -> list[float]:
    """Whether the tax breakdown table (GST / VAT summary), a reading of the total independent of its label,
    agrees: two of its amounts (net and tax) add up to the total, or one of them is the total, exactly up to
    the printed adjustments. [agrees, has amounts but disagrees]."""
    start = next((i for i, label in enumerate(read.labels) if label is Label.TAX_SUMMARY), None)
    if start is None:
        return [0.0, 0.0]
    amounts = [
        a.value
        for line in read.lines[start + 1 : start + 1 + TABLE_LINES]
        for a in find_amounts(line)
        if a.is_money and a.value > 0
    ][:TABLE_AMOUNTS]
    if len(amounts) < 2:
        return [0.0, 0.0]
    sums = set(amounts) | {round(a + b, 2) for i, a in enumerate(amounts) for b in amounts[i + 1 :]}
    agrees_ = any(_exactly(value, total, read.adjustments) for value in sums)
    return [float(agrees_), float(not agrees_)]


EXACT = 0.005
"""Amounts closer than this are the same to the cent (a reading that agrees only within the consistency
check's tolerance, which allows for cash rounding, is a near miss)."""


def _readings(read: ReadSummary, total: float) -> dict[str, bool]:
    """The independent readings of the total that agree with it, each True when only within the tolerance.

    Subtotal plus the printed adjustments, the items' sum (plus them), what was paid (tendered minus
    change), and the same amount printed again on another line (under another total label, or alone).
    """
    summary, adjustments = read.summary, read.adjustments
    out: dict[str, bool] = {}
    for name, base in (("subtotal", summary.subtotal), ("items", read.items_sum)):
        if base is not None and agrees(base, total, adjustments):
            out[name] = not _exactly(base, total, adjustments)
    if close(summary.paid, total):
        out["paid"] = abs((summary.paid or 0.0) - total) >= EXACT
    again = [hit.value for hit in summary.hits if hit.label in TOTAL_TIER and hit.index != summary.total_index]
    again += [value for index, value in summary.unlabeled if index != summary.total_index]
    if any(abs(value - total) < EXACT for value in again):
        out["printed again"] = False
    return out


def _exactly(base: float, target: float, adjustments: Adjustments) -> bool:
    return any(abs(base + delta - target) < EXACT for delta in adjustments.variants())


def _implausible(read: ReadSummary, total: float) -> bool:
    """Whether the receipt's summary rules the total out: a tax as big as the total, a subtotal above it (with
    no discount to explain that), or a total more than three times the subtotal. (The items' sum says the same
    less reliably, since item lines are misread more often: it is evidence of its own.)"""
    summary, discount = read.summary, read.adjustments.discount
    return (
        (summary.tax is not None and total > 0 and summary.tax >= total)
        or (summary.subtotal is not None and summary.subtotal > total + discount + TOLERANCE)
        or (summary.subtotal is not None and summary.subtotal > 0 and total > 3 * summary.subtotal)
    )


def _rival_checks(read: ReadSummary, total: float) -> bool:
    """Whether another labelled total, not the one chosen, is the one the subtotal, the items or the payment
    confirm to the cent."""
    summary, adjustments = read.summary, read.adjustments
    rivals = {
        round(hit.value, 2) for hit in summary.hits if hit.label in TOTAL_TIER and abs(hit.value - total) >= EXACT
    }
    return any(
        (summary.subtotal is not None and _exactly(summary.subtotal, rival, adjustments))
        or (read.items_sum is not None and _exactly(read.items_sum, rival, adjustments))
        or (summary.paid is not None and abs(summary.paid - rival) < EXACT)
        for rival in rivals
    )


_DATE_WORD_RE = re.compile(r"\b(?:DATE|TARIKH|DATUM|FECHA)\b", re.I)


def _date_evidence(read: ReadSummary) -> list[float]:
    if read.date is None:
        return [0.0] * len(FEATURES["date"])
    found: set[str] = set()
    labelled = ambiguous = in_header = False
    for index, line in enumerate(read.lines):
        for match in find_dates(line):
            found.add(match.date.isoformat())
            if match.date.isoformat() == read.date or read.date in {r.isoformat() for r in match.readings}:
                labelled = labelled or bool(_DATE_WORD_RE.search(line))
                ambiguous = ambiguous or match.ambiguous
                in_header = in_header or index < len(read.lines) / 2
    return [1.0, float(labelled), min(len(found - {read.date}), 3) / 3, float(ambiguous), float(in_header)]


def _merchant_evidence(read: ReadSummary) -> list[float]:
    name = read.merchant
    if not name:
        return [0.0] * len(FEATURES["merchant"])
    letters = [ch for ch in name if ch.isalpha()]
    return [
        1.0,
        float(bool(_LEGAL_RE.search(name))),
        float(read.merchant_index == 0),
        float(bool(letters) and all(ch.isupper() for ch in letters)),
        float(len(name) <= 6),
        float(read.address is not None),
        *_layout(read.layout_company),
    ]


def _layout(probability: float | None) -> list[float]:
    """[the layout model's probability that the field's lines are that field, no layout model]: without a
    model the probability reads 0 and the second feature 1, so fitted weights treat "absent" on its own."""
    return [0.0, 1.0] if probability is None else [probability, 0.0]


def _address_evidence(read: ReadSummary) -> list[float]:
    address = read.address
    if not address:
        return [0.0] * len(FEATURES["address"])
    return [
        1.0,
        float(bool(_POSTCODE_RE.search(address.upper()))),
        float(bool(_STREET_RE.search(address))),
        min(len(address.split()), 20) / 20,
        float(len(address) > 40),
        *_layout(read.layout_address),
    ]


def evidence(read: ReadSummary) -> dict[str, list[float]]:
    """The evidence vector of each field (see :data:`FEATURES`)."""
    return {
        "total": _total_evidence(read),
        "date": _date_evidence(read),
        "merchant": _merchant_evidence(read),
        "address": _address_evidence(read),
    }


class FieldWeights(BaseModel):
    """A logistic model over one field's evidence."""

    features: list[str]
    coef: list[float]
    intercept: float


class ConfidenceWeights(BaseModel):
    """The fitted weights per field, and what they were fitted on."""

    fitted_on: str = ""
    fields: dict[str, FieldWeights] = Field(default_factory=dict)


def probability(values: Sequence[float], weights: FieldWeights) -> float:
    """The logistic model's probability for one evidence vector."""
    z = weights.intercept + sum(c * v for c, v in zip(weights.coef, values, strict=True))
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@functools.cache
def shipped_weights() -> ConfidenceWeights:
    """The weights shipped with the package (empty when the file is missing or stale)."""
    try:
        text = resources.files("orchestrator.rules").joinpath("data/receipt_confidence.json").read_text()
        weights = ConfidenceWeights.model_validate(json.loads(text))
    except (OSError, ValueError, ValidationError):
        return ConfidenceWeights()
    fresh = {
        name: w
        for name, w in weights.fields.items()
        if tuple(w.features) == FEATURES.get(name) and len(w.coef) == len(w.features)
    }
    return weights.model_copy(update={"fields": fresh})


def field_confidence(
    found: Mapping[str, Sequence[float]], weights: ConfidenceWeights | None = None
) -> dict[str, float]:
    """Each field's probability of being right; 0 for a field that was not found."""
    weights = weights if weights is not None else shipped_weights()
    out: dict[str, float] = {}
    for name, values in found.items():
        if not values or not values[0]:
            out[name] = 0.0
        elif name in weights.fields:
            out[name] = round(probability(values, weights.fields[name]), 4)
        elif name == "total":
            out[name] = round(values[FEATURES["total"].index("consistency")], 4)
        else:
            out[name] = 0.5  # found, with nothing fitted to say how often such a field is right
    return out


ESCALATE_BELOW = 0.9
"""The default total confidence below which a receipt goes up the cascade (``SMALL_MODEL_THRESHOLDS=parse=``)."""
