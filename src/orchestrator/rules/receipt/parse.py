"""The keyword/regex receipt parser: receipt text in, :class:`ParsedReceipt` out, no model involved.

    >>> receipt = parse_receipt_text('''CORNER CAFE
    ... 12 Main Street, Springfield
    ... 12 Jan 2018
    ... 2 x Coffee 3.50 7.00
    ... Muffin 2.75
    ... Subtotal 9.75
    ... Tax 0.78
    ... TOTAL $10.53
    ... CASH 20.00
    ... CHANGE 9.47''')
    >>> receipt.merchant, receipt.date, receipt.currency, receipt.total, len(receipt.items), receipt.confidence
    ('CORNER CAFE', '2018-01-12', 'USD', 10.53, 2, 1.0)

It works line by line and copes with OCR text that puts every box on its own line (an item's name,
quantity, unit price and amount on consecutive lines). The pieces live in private modules, one job each:
``_amounts`` (money), ``_dates``, ``_labels`` (the keyword vocabulary), ``_summary`` (total, subtotal,
tax, paid), ``_items``, ``_header`` (merchant and address), ``_currency`` and ``_consistency``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from typing import Literal, Protocol

from orchestrator.rules.models import LineItem, OcrLine, ParsedReceipt
from orchestrator.rules.receipt._amounts import minor_unit
from orchestrator.rules.receipt._consistency import LINE_PENALTY, Adjustments, agrees, check, line_mismatches
from orchestrator.rules.receipt._currency import detect_currency, prefers_month_first
from orchestrator.rules.receipt._dates import choose_date, resolve_dayfirst
from orchestrator.rules.receipt._header import HEADER_LINES, read_header
from orchestrator.rules.receipt._items import find_items
from orchestrator.rules.receipt._labels import TOTAL_TIER, Label, classify_lines
from orchestrator.rules.receipt._summary import Summary, summarize
from orchestrator.rules.receipt.confidence import (
    EXACT,
    FIELDS,
    ConfidenceWeights,
    ReadSummary,
    evidence,
    field_confidence,
)
from orchestrator.rules.receipt.layout_model import LayoutModel, agreement, header_from_model, shipped_layout_model
from orchestrator.rules.receipt.lexicon import Lexicon, repair_header, shipped_lexicon

__all__ = ["ReceiptLike", "check_lines", "parse_receipt_text", "parse_with_evidence", "receipt_from_answer"]


class _ItemLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def unit_price(self) -> float | None: ...
    @property
    def amount(self) -> float: ...


class ReceiptLike(Protocol):
    """What a model's parsed receipt has (``orchestrator.small_model_worker.tasks.ReceiptAnswer``)."""

    @property
    def merchant(self) -> str | None: ...
    @property
    def date(self) -> str | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def subtotal(self) -> float | None: ...
    @property
    def tax(self) -> float | None: ...
    @property
    def total(self) -> float | None: ...
    @property
    def items(self) -> Sequence[_ItemLike]: ...


def parse_receipt_text(text: str, lines: Sequence[OcrLine] | None = None) -> ParsedReceipt:
    """Extract merchant, address, date, currency, subtotal, tax, total and line items from receipt text.

    Empty text gives an empty receipt with confidence 0 and an issue saying so; a receipt whose numbers
    disagree keeps what was read and lists each mismatch in ``issues``, with a lower ``confidence``.
    ``field_confidence`` gives each of total, date, merchant and address its chance of being right.
    `lines` are the OCR lines the text was made of, with their boxes (see :func:`parse_with_evidence`).
    """
    return parse_with_evidence(text, lines=lines)[0]


def parse_with_evidence(
    text: str,
    weights: ConfidenceWeights | None = None,
    layout: LayoutModel | None | Literal["shipped"] = "shipped",
    lexicon: Lexicon | None | Literal["shipped"] = "shipped",
    *,
    lines: Sequence[OcrLine] | None = None,
    agreement_layout: LayoutModel | None = None,
) -> tuple[ParsedReceipt, dict[str, list[float]]]:
    """:func:`parse_receipt_text`, plus the evidence each field's confidence came from (see ``_confidence``).

    Args:
        text: the receipt's text.
        weights: confidence weights to apply (default: the ones shipped with the package).
        layout: the line-layout model that reads the header (default: the shipped one, if any); None for
            the keyword rules alone.
        lexicon: the words that repair OCR misreadings in the header (default: the shipped one, if any;
            see ``lexicon``); None reads the header as printed.
        lines: the OCR lines `text` was made of (``OcrResult.lines``: one per text line, blank ones aside),
            with their boxes. The header is then read with each line's position and size too (a first
            name-like line set like body text gives way to a centred or large one just below it; the
            layout model gets box features; see ``_header.read_header``). Without them, or when no line
            has a box, the text alone is read.
        agreement_layout: with `layout` None, a layout model asked only how much it agrees with the rules'
            merchant and address (confidence evidence; the header stays the rules'). With a `layout`, that
            model's own probabilities are the agreement; with neither, the evidence says "no layout model".

    Raises:
        ValueError: `lines` do not match the text's lines (another count, or another text).
    """
    # NFKC folds full-width OCR output ("（", "：", "１") and "№" into plain characters.
    lines_text = [_fold(line) for line in text.splitlines() if line.strip()]
    boxes = _aligned_boxes(lines_text, lines) if lines is not None else None
    return _parse(lines_text, boxes, weights, layout, lexicon, agreement_layout)


def check_lines(text: str, lines: Sequence[OcrLine]) -> None:
    """Check that `lines` are the OCR lines `text` was made of (what ``lines=`` of the parser expects).

    Raises:
        ValueError: another count of lines with text, or a line that reads otherwise (its number is given).
    """
    _aligned_boxes([_fold(line) for line in text.splitlines() if line.strip()], lines)


def _fold(line: str) -> str:
    return unicodedata.normalize("NFKC", line).strip()


def _aligned_boxes(text_lines: list[str], ocr_lines: Sequence[OcrLine]) -> list[list[float] | None] | None:
    """Each text line's box from the OCR lines it was made of; None when no line has a box.

    Raises:
        ValueError: the OCR lines are not the text's lines.
    """
    kept = [line for line in ocr_lines if line.text.strip()]
    if len(kept) != len(text_lines):
        raise ValueError(
            f"lines: {len(kept)} OCR lines with text for {len(text_lines)} lines of text; "
            "pass the lines of the OCR result the text came from (e.g. step:ocr.lines with step:ocr.text)"
        )
    for number, (ocr_line, text_line) in enumerate(zip(kept, text_lines, strict=True), start=1):
        if _fold(ocr_line.text) != text_line:
            raise ValueError(f"lines: line {number} reads {ocr_line.text.strip()!r} but the text has {text_line!r}")
    boxes = [list(line.box) if line.box is not None else None for line in kept]
    return boxes if any(box is not None for box in boxes) else None


def _parse(
    lines: list[str],
    boxes: list[list[float] | None] | None,
    weights: ConfidenceWeights | None,
    layout: LayoutModel | None | Literal["shipped"],
    lexicon: Lexicon | None | Literal["shipped"],
    agreement_layout: LayoutModel | None = None,
) -> tuple[ParsedReceipt, dict[str, list[float]]]:
    if not lines:
        empty = ParsedReceipt(confidence=0.0, issues=["empty text: nothing to parse"])
        return empty, {name: [] for name in FIELDS}
    labels = classify_lines(lines)
    currency = detect_currency(lines)
    words = shipped_lexicon() if lexicon == "shipped" else lexicon
    top = repair_header(lines, words, HEADER_LINES)
    dayfirst = resolve_dayfirst(lines, default=not prefers_month_first(currency))
    purchase_date = choose_date(lines, dayfirst=dayfirst)
    if purchase_date is None and top != lines:
        # No date as printed: try the header with look-alikes repaired ("10 0CT 2017").
        purchase_date = choose_date(top, dayfirst=resolve_dayfirst(top, default=dayfirst))
    header = read_header(top, boxes)
    model = shipped_layout_model() if layout == "shipped" else layout
    probabilities: list[dict[str, float]] | None = None
    if model is not None:
        header, _, probabilities = header_from_model(top, model, header, boxes)
    elif agreement_layout is not None:
        probabilities = agreement_layout.classify(top, header, boxes, min(len(top), HEADER_LINES))
    minor = minor_unit(lines, currency)
    summary = summarize(lines, labels, minor)
    start = header.last + 1 if header.last is not None else 0
    items, _ = find_items(lines, labels, start, minor, stop=summary.total_index)
    items_sum = round(sum(item.amount for item in items), 2) if items else None
    adjustments = Adjustments(
        tax=summary.tax, service=summary.service, discount=summary.discount, rounding=summary.rounding
    )
    if summary.total is None or summary.total_from_subtotal:
        _read_pointless_total(lines, labels, summary, adjustments, minor)
    repaired = _repair_misread_digit(summary, items_sum, adjustments)
    outcome = check(items_sum, summary.subtotal, summary.total, adjustments)
    if repaired:
        outcome.issues.append(repaired)
    confidence = outcome.confidence
    mismatched = line_mismatches(items)
    if mismatched:
        outcome.issues.extend(mismatched)
        confidence = round(max(0.0, confidence - LINE_PENALTY * min(len(mismatched), 2)), 2)
    if summary.total_from_subtotal:
        outcome.issues.append("no total printed; the subtotal is taken as the total")
        confidence = round(max(0.0, confidence - 0.3), 2)
    iso_date = purchase_date.isoformat() if purchase_date else None
    found = evidence(
        ReadSummary(
            lines=top,
            labels=labels,
            summary=summary,
            items=items,
            items_sum=items_sum,
            adjustments=adjustments,
            line_mismatches=len(mismatched),
            consistency=confidence,
            merchant=header.merchant,
            merchant_index=_line_of(top, header.merchant),
            address=header.address,
            date=iso_date,
            layout_company=None if probabilities is None else agreement(top, probabilities, header.merchant, "company"),
            layout_address=None if probabilities is None else agreement(top, probabilities, header.address, "address"),
        )
    )
    receipt = ParsedReceipt(
        merchant=header.merchant,
        address=header.address,
        date=iso_date,
        currency=currency,
        subtotal=summary.subtotal,
        tax=summary.tax,
        total=summary.total,
        items=items,
        confidence=confidence,
        issues=outcome.issues,
        mode="keyword",
        field_confidence=field_confidence(found, weights),
    )
    return receipt, found


_BARE_INTEGER_RE = re.compile(r"(?<![\d.,])\d{3,7}(?![\d.,])")


def _read_pointless_total(
    lines: list[str], labels: Sequence[Label | None], summary: Summary, adjustments: Adjustments, minor: int
) -> None:
    """A total whose decimal point OCR dropped ("TOTAL 700" for 7.00), taken only when it is exactly what the
    subtotal and the printed adjustments make; otherwise the summary stays as it was."""
    if summary.subtotal is None or not minor:
        return
    for index, (line, label) in enumerate(zip(lines, labels, strict=True)):
        if label not in TOTAL_TIER:
            continue
        for match in _BARE_INTEGER_RE.finditer(line):
            value = int(match.group()) / 10**minor
            if value > 0 and agrees(summary.subtotal, value, adjustments):
                summary.total, summary.total_index, summary.total_from_subtotal = value, index, False
                return


def _repair_misread_digit(summary: Summary, items_sum: float | None, adjustments: Adjustments) -> str | None:
    """Take the amount two independent readings agree on, to the cent, over a printed total one digit away
    from it that no reading confirms (OCR misread a digit: "Total 112.46", subtotal + tax + rounding 112.45,
    cash 112.45, change 0.00). Returns the issue saying so, or None when the total stays.

    Readings: the subtotal plus some of the printed adjustments, the items' sum plus them, and what was paid
    (tendered minus change). One reading alone never overrules the printed total.
    """
    total = summary.total
    if total is None or summary.total_from_subtotal:
        return None
    deltas = adjustments.variants()
    readings: list[set[float]] = [
        {round(base + delta, 2) for delta in deltas} for base in (summary.subtotal, items_sum) if base is not None
    ]
    if summary.paid is not None:
        readings.append({round(summary.paid, 2)})
    if any(abs(value - total) < EXACT for reading in readings for value in reading):
        return None  # a reading confirms the printed total
    votes: dict[float, int] = {}
    for reading in readings:
        for value in reading:
            votes[value] = votes.get(value, 0) + 1
    agreed = [value for value, count in votes.items() if count >= 2 and _one_digit_apart(value, total)]
    if len(agreed) != 1:
        return None
    summary.total = agreed[0]
    return (
        f"the total is printed as {total:.2f}, one digit away from {agreed[0]:.2f}, which two other readings "
        "(subtotal and adjustments, items, amount paid) agree on: read as a misread digit"
    )


def _one_digit_apart(a: float, b: float) -> bool:
    first, second = f"{a:.2f}", f"{b:.2f}"
    return len(first) == len(second) and sum(x != y for x, y in zip(first, second, strict=True)) == 1


def _line_of(lines: list[str], name: str | None) -> int | None:
    """The index of the first header line the name was read from."""
    if not name:
        return None
    return next((i for i, line in enumerate(lines[:HEADER_LINES]) if line and line in name), None)


def receipt_from_answer(answer: ReceiptLike, *, mode: str) -> ParsedReceipt:
    """A model's parsed receipt, checked like the keyword parser's: the numbers' agreement is its confidence."""
    items = [
        LineItem(name=i.name.strip(), quantity=i.quantity, unit_price=i.unit_price, amount=round(i.amount, 2))
        for i in answer.items
        if i.name.strip()
    ]
    issues: list[str] = []
    when = None
    if answer.date:
        try:
            when = date.fromisoformat(answer.date.strip()).isoformat()
        except ValueError:
            issues.append(f"the model's date {answer.date!r} is not YYYY-MM-DD; dropped")
    currency = (answer.currency or "").strip().upper()
    items_sum = round(sum(item.amount for item in items), 2) if items else None
    outcome = check(items_sum, answer.subtotal, answer.total, Adjustments(tax=answer.tax))
    mismatched = line_mismatches(items)
    confidence = round(max(0.0, outcome.confidence - LINE_PENALTY * min(len(mismatched), 2)), 2)
    return ParsedReceipt(
        merchant=(answer.merchant or "").strip() or None,
        date=when,
        currency=currency if len(currency) == 3 and currency.isalpha() else None,
        subtotal=answer.subtotal,
        tax=answer.tax,
        total=answer.total,
        items=items,
        confidence=confidence,
        issues=issues + outcome.issues + mismatched,
        mode=mode,
    )
