"""Receipt accuracy: run the parser over a folder of labelled receipts and score each field.

Two folder layouts are recognised, per receipt, from ``<id>.json``:

* **SROIE**: ``{"company", "date", "address", "total"}``. Scored fields: ``company``, ``date``, ``address``
  and ``total``.
* **WildReceipt**: ``{"fields": {"Store_name_value": [...], "Date_value": [...], "Total_value": [...],
  "Prod_item_value": [...], "Prod_price_value": [...], ...}}``. Scored fields: ``merchant``, ``date``,
  ``total``, and the item scores ``item_name_f1`` and ``item_price_f1``.

How values are compared (ground truth is the text as printed, ours is normalised):

* Text (company, address, merchant): upper-cased, with every space and punctuation mark removed, must be
  equal. A WildReceipt merchant may equal any one ``Store_name_value`` box or all of them run together.
* Dates: both sides are read as dates. A printed date that is ambiguous (``03/04/2018``) matches either
  reading, because the string alone does not say which one is meant. A receipt whose labelled date holds
  no full date (``04/11``) or that has no date label is not scored on date.
* Amounts: read as numbers (``RM9.00`` == 9.0) and equal to the cent.
* WildReceipt total: ``Total_value`` boxes also label amounts tendered and card charges, so the expected
  total is the one box that equals ``Subtotal_value + Tax_value (+ Tips_value)`` when tax or tips are
  labelled and one does, else the
  most frequent ``Total_value`` number, ties going to the larger. One value is expected; matching "any
  box" would credit a parser that returns the cash tendered.
* Items (WildReceipt): names compared whitespace- and case-insensitively, prices as numbers; each as a
  multiset, micro-averaged over all receipts into precision, recall and F1. SROIE has no item labels.

A field's accuracy is over the receipts that have a ground truth for it (``counts`` says how many).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from orchestrator.rules.models import OcrLine, OcrResult, ParsedReceipt
from orchestrator.rules.receipt import date_readings, parse_amount
from orchestrator.rules.receipt.parse import parse_receipt_text

logger = logging.getLogger(__name__)

Layout = Literal["sroie", "wildreceipt", "mixed", "empty"]
ReadText = Callable[[Path], Awaitable[str | OcrResult]]
"""An OCR function: an image's text, or its whole OCR result (text and lines with their boxes)."""


class Parser(Protocol):
    """A receipt parser under test: the text, and the OCR lines with their boxes when the image was read."""

    def __call__(
        self, text: str, lines: Sequence[OcrLine] | None = None, /
    ) -> ParsedReceipt | Awaitable[ParsedReceipt]: ...


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
DEFAULT_MAX_MISSES = 30


class Miss(BaseModel):
    """One wrong field: which receipt, which field, what the label says and what the parser gave."""

    receipt: str
    field: str
    expected: str
    got: str | None
    severity: float = Field(ge=0, le=1, description="1 for a missing value, less the closer the value was")


class ReceiptEvalReport(BaseModel):
    """Per-field accuracy over a folder of labelled receipts."""

    layout: Layout
    n: int = Field(description="receipts evaluated")
    fields: dict[str, float] = Field(default_factory=dict, description="accuracy (or F1 for item_*) per field")
    counts: dict[str, int] = Field(default_factory=dict, description="receipts with a ground truth for the field")
    details: dict[str, float] = Field(default_factory=dict, description="item precision and recall")
    misses: list[Miss] = Field(default_factory=list, description="the worst misses first")


def normalize_text(text: str | None) -> str:
    """Upper case, without spaces or punctuation: how text fields are compared."""
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())


def _squeeze(text: str) -> str:
    return "".join(text.split()).casefold()


def _same_amount(expected: float | None, got: float | None) -> bool:
    return expected is not None and got is not None and abs(expected - got) < 0.005


def _as_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _text_severity(expected: str, got: str | None) -> float:
    if not got:
        return 1.0
    return round(1 - SequenceMatcher(None, normalize_text(expected), normalize_text(got)).ratio(), 3)


def _amount_severity(expected: float, got: float | None) -> float:
    if got is None:
        return 1.0
    return round(min(1.0, abs(expected - got) / max(abs(expected), 1.0)), 3)


@dataclass
class _Tally:
    """Running counts while receipts are scored."""

    right: Counter[str] = field(default_factory=Counter)
    scored: Counter[str] = field(default_factory=Counter)
    matched: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    misses: list[Miss] = field(default_factory=list)

    def score(self, receipt: str, name: str, ok: bool, expected: str, got: str | None, severity: float) -> None:
        self.scored[name] += 1
        if ok:
            self.right[name] += 1
        else:
            self.misses.append(Miss(receipt=receipt, field=name, expected=expected, got=got, severity=severity))

    def multiset(self, receipt: str, name: str, expected: list[str], got: list[str]) -> None:
        overlap = Counter(expected) & Counter(got)
        matched = sum(overlap.values())
        self.matched[name] += matched
        self.predicted[name] += len(got)
        self.expected[name] += len(expected)
        if matched < max(len(expected), len(got)):
            missing = list((Counter(expected) - overlap).elements())
            extra = list((Counter(got) - overlap).elements())
            severity = 1 - (2 * matched / (len(expected) + len(got)) if expected or got else 1)
            self.misses.append(
                Miss(
                    receipt=receipt,
                    field=name,
                    expected="; ".join(missing) or "(nothing more)",
                    got="; ".join(extra) or None,
                    severity=round(severity, 3),
                )
            )


def _score_date(tally: _Tally, receipt: str, boxes: list[str], got: str | None) -> None:
    readings: set[date] = set()
    for box in boxes:
        readings |= date_readings(box)
    if not readings:
        return
    ok = _as_date(got) in readings
    tally.score(receipt, "date", ok, " | ".join(boxes), got, 0.0 if ok else 1.0 if got is None else 0.5)


def _score_sroie(tally: _Tally, receipt: str, truth: dict[str, Any], parsed: ParsedReceipt) -> None:
    for name, got in (("company", parsed.merchant), ("address", parsed.address)):
        expected = str(truth.get(name) or "")
        if expected:
            ok = normalize_text(expected) == normalize_text(got)
            tally.score(receipt, name, ok, expected, got, 0.0 if ok else _text_severity(expected, got))
    if truth.get("date"):
        _score_date(tally, receipt, [str(truth["date"])], parsed.date)
    expected_total = parse_amount(str(truth.get("total") or ""))
    if expected_total is not None:
        ok = _same_amount(expected_total, parsed.total)
        got = None if parsed.total is None else f"{parsed.total:.2f}"
        tally.score(receipt, "total", ok, str(truth["total"]), got, _amount_severity(expected_total, parsed.total))


def expected_wildreceipt_total(fields: dict[str, list[str]]) -> float | None:
    """The grand total a WildReceipt record labels (see the module docstring for the rule)."""
    totals = [v for v in (parse_amount(box) for box in fields.get("Total_value", [])) if v is not None]
    if not totals:
        return None

    def first_amount(key: str) -> float:
        values = [v for v in (parse_amount(box) for box in fields.get(key, [])) if v is not None]
        return values[0] if values else 0.0

    subtotal = first_amount("Subtotal_value")
    taxes = [v for v in (parse_amount(box) for box in fields.get("Tax_value", [])) if v is not None]
    tips = first_amount("Tips_value")
    if subtotal and (taxes or tips):
        # Every tax box (SGST + CGST), or each distinct one when a tax is printed twice.
        for tax in (sum(taxes), sum(set(taxes))):
            built = round(subtotal + tax + tips, 2)
            matching = [t for t in totals if abs(t - built) < 0.005]
            if matching:
                return matching[0]
    counts = Counter(totals)
    return max(counts, key=lambda value: (counts[value], value))


def _score_wildreceipt(tally: _Tally, receipt: str, truth: dict[str, Any], parsed: ParsedReceipt) -> None:
    fields: dict[str, list[str]] = truth.get("fields", {})
    stores = [s for s in fields.get("Store_name_value", []) if s.strip()]
    if stores:
        accepted = {normalize_text(s) for s in stores} | {normalize_text("".join(stores))}
        ok = normalize_text(parsed.merchant) in accepted
        severity = 0.0 if ok else min(_text_severity(s, parsed.merchant) for s in stores)
        tally.score(receipt, "merchant", ok, " | ".join(stores), parsed.merchant, severity)
    if fields.get("Date_value"):
        _score_date(tally, receipt, fields["Date_value"], parsed.date)
    expected_total = expected_wildreceipt_total(fields)
    if expected_total is not None:
        ok = _same_amount(expected_total, parsed.total)
        got = None if parsed.total is None else f"{parsed.total:.2f}"
        tally.score(receipt, "total", ok, f"{expected_total:.2f}", got, _amount_severity(expected_total, parsed.total))
    names = [_squeeze(box) for box in fields.get("Prod_item_value", []) if box.strip()]
    if names:
        tally.multiset(receipt, "item_name", names, [_squeeze(item.name) for item in parsed.items])
    prices = [v for v in (parse_amount(box) for box in fields.get("Prod_price_value", [])) if v is not None]
    if fields.get("Prod_item_value"):
        tally.multiset(
            receipt, "item_price", [f"{p:.2f}" for p in prices], [f"{item.amount:.2f}" for item in parsed.items]
        )


def _layout_of(truth: dict[str, Any]) -> Literal["sroie", "wildreceipt"] | None:
    if isinstance(truth.get("fields"), dict):
        return "wildreceipt"
    if {"company", "total"} <= truth.keys():
        return "sroie"
    return None


def _image_for(folder: Path, receipt: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{receipt}{suffix}"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no image for receipt {receipt!r} in {folder} (looked for {', '.join(IMAGE_SUFFIXES)})")


def receipt_ids(folder: Path) -> list[str]:
    """The ids of the labelled receipts in `folder`, sorted (``<id>.json``, not ``<id>.box.json``)."""
    return sorted(p.name[: -len(".json")] for p in folder.glob("*.json") if not p.name.endswith(".box.json"))


async def _read(folder: Path, receipt: str, read_text: ReadText | None) -> tuple[str, list[OcrLine] | None]:
    if read_text is None:
        return (folder / f"{receipt}.txt").read_text(encoding="utf-8"), None
    read = await read_text(_image_for(folder, receipt))
    if isinstance(read, OcrResult):
        return read.text, list(read.lines)
    return read, None


async def _parse(parser: Parser, text: str, lines: list[OcrLine] | None) -> ParsedReceipt:
    result = parser(text) if lines is None else parser(text, lines)
    if inspect.isawaitable(result):
        return await result
    return result


def _finish(tally: _Tally, layouts: set[Layout], n: int, max_misses: int | None) -> ReceiptEvalReport:
    fields = {name: round(tally.right[name] / count, 4) for name, count in sorted(tally.scored.items())}
    details: dict[str, float] = {}
    for name in sorted(tally.expected):
        precision = tally.matched[name] / tally.predicted[name] if tally.predicted[name] else 0.0
        recall = tally.matched[name] / tally.expected[name] if tally.expected[name] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        fields[f"{name}_f1"] = round(f1, 4)
        details[f"{name}_precision"] = round(precision, 4)
        details[f"{name}_recall"] = round(recall, 4)
    counts = dict(sorted(tally.scored.items())) | {f"{name}_f1": tally.expected[name] for name in tally.expected}
    misses = sorted(tally.misses, key=lambda miss: (-miss.severity, miss.receipt, miss.field))
    layout: Layout = "empty"
    if len(layouts) > 1:
        layout = "mixed"
    elif layouts:
        layout = next(iter(layouts))
    return ReceiptEvalReport(
        layout=layout,
        n=n,
        fields=fields,
        counts=counts,
        details=details,
        misses=misses if max_misses is None else misses[:max_misses],
    )


async def evaluate_receipts(
    folder: Path,
    *,
    read_text: ReadText | None = None,
    limit: int | None = None,
    ids: Iterable[str] | None = None,
    parser: Parser = parse_receipt_text,
    max_misses: int | None = DEFAULT_MAX_MISSES,
) -> ReceiptEvalReport:
    """Parse every labelled receipt in `folder` and score the fields against the labels.

    This is a coroutine (the OCR function it may be given is async); from sync code call
    ``anyio.run(evaluate_receipts, folder)``.

    Args:
        folder: A folder of ``<id>.json`` labels (SROIE or WildReceipt layout) with ``<id>.txt`` or images.
        read_text: An OCR function (image path -> text, or the whole OCR result, whose lines' boxes the
            parser is then given too, as the pipeline gives them). Without it the provided ``<id>.txt`` is
            read; with it ``<id>.jpg`` (or another image suffix) is read through it.
        limit: Score only the first `limit` receipts (sorted by id).
        ids: Score only these receipt ids.
        parser: The parser under test, sync or async; the keyword parser by default.
        max_misses: Keep this many misses, worst first (None keeps all).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"receipt folder not found: {folder}")
    chosen = receipt_ids(folder)
    if ids is not None:
        wanted = set(ids)
        chosen = [receipt for receipt in chosen if receipt in wanted]
    if limit is not None:
        chosen = chosen[:limit]
    tally = _Tally()
    layouts: set[Layout] = set()
    n = 0
    for receipt in chosen:
        truth = json.loads((folder / f"{receipt}.json").read_text(encoding="utf-8"))
        layout = _layout_of(truth)
        if layout is None:
            logger.warning("skipping %s: not a SROIE or WildReceipt label file", receipt)
            continue
        parsed = await _parse(parser, *await _read(folder, receipt, read_text))
        layouts.add(layout)
        n += 1
        if layout == "sroie":
            _score_sroie(tally, receipt, truth, parsed)
        else:
            _score_wildreceipt(tally, receipt, truth, parsed)
    return _finish(tally, layouts, n, max_misses)
