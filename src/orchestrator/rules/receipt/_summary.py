"""The money summary of a receipt: which printed amount is the total, the subtotal, the tax, cash and change.

Labels and their amounts are paired first. An amount is on the label's own line (``TOTAL 12.50``) or on
a following line (``TOTAL`` / ``:`` / ``RM`` / ``12.50``, as box-per-line OCR gives it). When several
labels come before their values (``SalesTax`` / ``OrderTotal`` / ``1.39`` / ``19.38``) they are filled in
order (only when the labels are on consecutive lines), except that a rounding adjustment never takes a
value of a unit or more.

The total is then chosen among the labelled totals by the label's strength (grand total and amount due
over TOTAL over a bare AMOUNT), agreement with what was paid (cash tendered minus change) and with
subtotal + tax; a total inside a GST/VAT breakdown table does not count. When the receipt prints a rounding
adjustment after the total and shows the rounded figure (as the amount paid or on a line of its own), the
rounded figure is the total (60.31 - 0.01 -> 60.30). Printed without cents ("Total: 104"), a total is
taken only when subtotal + tax agree with it.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from orchestrator.rules.receipt._amounts import ISO_CODES, Amount, find_amounts
from orchestrator.rules.receipt._labels import MONEY_LABELS, TOTAL_TIER, Label

_CURRENCY_WORDS = ISO_CODES | {"RM", "EURO", "US", "U", "RS", "RP"}
ROUNDING_LIMIT = 1.0
"""A rounding adjustment is always smaller than this; a bigger value belongs to another label."""
CASH_ROUNDING = 0.10
"""Largest difference between a total and the amount paid that is explained by cash rounding."""
ADDS_UP_POINTS = 12
"""What a candidate total that is subtotal + tax gains. More than one step of label strength (10): OCR misreads
digits, and of a "TOTAL 28.65" that adds up and a "BALANCE DUE 23.65" that does not, the first is the total."""


@dataclass(frozen=True)
class Hit:
    """A labelled amount: the label, its value and the index of the label's line."""

    label: Label
    value: float
    index: int


@dataclass
class Summary:
    """The money summary read from a receipt's lines."""

    hits: list[Hit] = field(default_factory=list)
    unlabeled: list[tuple[int, float]] = field(default_factory=list)
    total: float | None = None
    total_index: int | None = None
    subtotal: float | None = None
    tax: float | None = None
    service: float = 0.0
    discount: float = 0.0
    rounding: float = 0.0
    paid: float | None = None
    total_from_subtotal: bool = False

    def values(self, *labels: Label) -> list[Hit]:
        return [hit for hit in self.hits if hit.label in labels]


def close(a: float | None, b: float | None, tolerance: float = 0.011) -> bool:
    """Whether two amounts are equal to the cent (None is never close)."""
    return a is not None and b is not None and abs(a - b) <= tolerance


def money_only(line: str, minor: int = 2) -> list[Amount] | None:
    """The amounts of a line that holds nothing else (but a currency or a tax code), else None."""
    amounts = [a for a in find_amounts(line) if not a.percent]
    if not any(a.is_money_in(minor) for a in amounts):
        return None
    # What is left between the amounts, built in one pass (slicing per amount would copy the line each time).
    bounds = [0, *(edge for amount in amounts for edge in (amount.start, amount.end)), len(line)]
    rest = " ".join(line[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2))
    if not _only_codes(rest):
        return None
    return [a for a in amounts if a.is_money_in(minor)]


def _only_codes(text: str) -> bool:
    """Whether the words in `text` are only currency codes and tax codes (S, T, SR, ZR, TX, ...)."""
    words = [w for w in re.findall(r"[A-Za-z]+", text) if w.upper() not in _CURRENCY_WORDS]
    return len(words) <= 2 and all(len(w) <= 2 for w in words)


def is_filler(line: str) -> bool:
    """A line with no words to speak of: ':', 'RM', '(RM)', 'SR', '2', '6.00 %', '@10%'."""
    return _only_codes(line)


def _accepts(label: Label, value: float) -> bool:
    if label is Label.ROUNDING:
        return abs(value) < ROUNDING_LIMIT
    if label in (Label.TAX, Label.TAX_INCLUDED):
        return value >= 0
    return True


def _same_line_value(line: str, minor: int) -> float | None:
    money = [a for a in find_amounts(line) if a.is_money_in(minor)]
    return money[-1].value if money else None


_WHOLE_NUMBER_RE = re.compile(r"^\s*(?:RM|\$|€|£)?\s*(\d{1,7})\s*$")
_WHOLE_AT_END_RE = re.compile(r"[:\s](?:RM|\$|€|£)?\s*(\d{1,7})\s*$")


@dataclass
class Pairing:
    """Labels paired with amounts, amounts no label claimed, and whole numbers under a total label."""

    hits: list[Hit] = field(default_factory=list)
    unlabeled: list[tuple[int, float]] = field(default_factory=list)
    whole: list[Hit] = field(default_factory=list)


def pair_labels(lines: list[str], labels: list[Label | None], minor: int = 2) -> Pairing:
    """Pair labels with their amounts; also keep amount-only lines no label claimed."""
    pairing = Pairing()
    pending: deque[tuple[Label, int]] = deque(maxlen=3)
    for index, (line, label) in enumerate(zip(lines, labels, strict=True)):
        if label in MONEY_LABELS:
            value = _same_line_value(line, minor)
            if value is not None and _accepts(label, value):
                pairing.hits.append(Hit(label, value, index))
            else:
                whole = _WHOLE_AT_END_RE.search(line) if label in TOTAL_TIER else None
                if whole:
                    # "Total: 104" on one line; used only if subtotal + tax agree, as below.
                    pairing.whole.append(Hit(label, float(whole.group(1)), index))
                if pending and pending[-1][1] != index - 1:
                    # Stacked labels share the values below them only when printed on consecutive lines;
                    # a label followed by a dash or a rate ("DISCOUNT -", "TAX RATE 2%") had its value.
                    pending.clear()
                pending.append((label, index))
            continue
        if label is not None:
            pending.clear()
            continue
        amounts = money_only(line, minor)
        if amounts is not None:
            value = amounts[-1].value
            while pending:
                pending_label, pending_index = pending.popleft()
                if _accepts(pending_label, value):
                    pairing.hits.append(Hit(pending_label, value, pending_index))
                    break
            else:
                pairing.unlabeled.append((index, value))
            continue
        whole = _WHOLE_NUMBER_RE.match(line)
        if whole and pending and pending[0][0] in TOTAL_TIER:
            # "Total: 104" on a receipt printed without cents; used only if subtotal + tax agree.
            pairing.whole.append(Hit(pending[0][0], float(whole.group(1)), pending[0][1]))
        if not is_filler(line):
            pending.clear()
    return pairing


def _paid(hits: list[Hit]) -> tuple[float | None, list[float]]:
    """Amount paid (tendered - change) when both are printed, and every tendered amount."""
    tendered = [hit.value for hit in hits if hit.label is Label.TENDERED]
    last_tendered: Hit | None = None  # one pass: hits are in line order
    for hit in sorted(hits, key=lambda h: h.index):
        if hit.label is Label.TENDERED:
            last_tendered = hit
        elif hit.label is Label.CHANGE and last_tendered is not None and last_tendered.index < hit.index:
            paid = round(last_tendered.value - abs(hit.value), 2)
            if paid >= 0:
                return paid, tendered
    return None, tendered


def _choose_total(candidates: list[Hit], paid: float | None, tendered: list[float], expected: set[float]) -> Hit:
    any_nonzero = any(hit.value != 0 for hit in candidates)
    any_positive = any(hit.value > 0 for hit in candidates)
    tendered_cents = {round(t * 100) for t in tendered}  # a set, so scoring stays linear in the hits

    def score(hit: Hit) -> tuple[float, int]:
        points = TOTAL_TIER[hit.label] * 10.0
        cents = round(hit.value * 100)
        if close(hit.value, paid):
            points += 12
        elif paid is None and tendered_cents & {cents - 1, cents, cents + 1}:
            points += 5
        if any(close(hit.value, e, CASH_ROUNDING) for e in expected):
            points += ADDS_UP_POINTS
        if (hit.value == 0 and any_nonzero) or (hit.value < 0 and any_positive):
            points -= 30
        return points, hit.index

    return max(candidates, key=score)


def _pick_tax(summary: Summary, taxes: list[Hit]) -> float | None:
    if not taxes:
        return None
    distinct: dict[float, Hit] = {}
    for hit in taxes:
        distinct.setdefault(hit.value, hit)
    if summary.subtotal is not None and summary.total is not None:
        target = summary.total - summary.subtotal - summary.service - summary.rounding + summary.discount
        options = [hit.value for hit in taxes] + [round(sum(distinct), 2)]
        for option in options:
            if close(option, target, 0.021):
                return option
    return taxes[0].value


def _pick_subtotal(summary: Summary, subtotals: list[Hit]) -> float | None:
    if not subtotals:
        return None
    if summary.total is not None:
        before = [hit for hit in subtotals if summary.total_index is None or hit.index <= summary.total_index]
        subtotals = before or subtotals
        if len(subtotals) > 1:
            added = round(sum(hit.value for hit in subtotals), 2)
            if any(close(added + tax.value, summary.total, 0.021) for tax in summary.values(Label.TAX)):
                return added
    return subtotals[0].value


def _expected_totals(subtotals: list[Hit], taxes: list[Hit], service: float) -> set[float]:
    """Totals that subtotal + tax (+ service) would give: with the first tax, or all distinct taxes."""
    if not subtotals or not taxes:
        return set()
    subtotal = subtotals[0].value
    return {
        round(subtotal + taxes[0].value + service, 2),
        round(subtotal + sum({hit.value for hit in taxes}) + service, 2),
        round(subtotal + sum(hit.value for hit in taxes) + service, 2),
    }


def _after_rounding(summary: Summary, best: Hit) -> float:
    """The total once the printed rounding adjustment is applied, when the receipt shows that figure."""
    rounding = next((hit for hit in summary.hits if hit.label is Label.ROUNDING and hit.value), None)
    if rounding is None or rounding.index < best.index:
        return best.value
    adjusted = round(best.value + rounding.value, 2)
    shown = [value for index, value in summary.unlabeled if index > rounding.index]
    if close(adjusted, summary.paid) or any(close(adjusted, value) for value in shown):
        return adjusted
    return best.value


def _set_total(
    summary: Summary,
    body: list[Hit],
    pairing: Pairing,
    tendered: list[float],
    subtotals: list[Hit],
) -> None:
    taxes = [hit for hit in body if hit.label is Label.TAX]
    expected = _expected_totals(subtotals, taxes, summary.service)
    candidates = [hit for hit in body if hit.label in TOTAL_TIER]
    if not candidates and summary.paid is None:
        candidates = [hit for hit in pairing.hits if hit.label in TOTAL_TIER]
    if not candidates:
        candidates = [hit for hit in pairing.whole if any(abs(hit.value - e) <= 1.0 for e in expected)]
    if candidates:
        best = _choose_total(candidates, summary.paid, tendered, expected)
        summary.total_index = best.index
        summary.total = summary.paid if best.value == 0 and summary.paid else _after_rounding(summary, best)
    elif summary.paid is not None and summary.paid > 0:
        summary.total = summary.paid
    elif expected:
        # No total label came with a value, but an unlabelled amount is exactly subtotal + tax.
        summary.total = next(
            (v for _, v in pairing.unlabeled if any(close(v, e) for e in expected)),
            None,
        )
    elif subtotals and not any(hit.label is Label.TAX for hit in body):
        # Nothing labelled as a total, no tax on top: the subtotal is what was charged.
        summary.total = subtotals[-1].value
        summary.total_from_subtotal = True


def summarize(lines: list[str], labels: list[Label | None], minor: int = 2) -> Summary:
    """Read the money summary of a receipt whose lines have been classified with :func:`classify`."""
    pairing = pair_labels(lines, labels, minor)
    summary = Summary(hits=pairing.hits, unlabeled=pairing.unlabeled)
    tables = [i for i, label in enumerate(labels) if label is Label.TAX_SUMMARY]
    table_start = tables[0] if tables else len(lines)
    body = [hit for hit in pairing.hits if hit.index < table_start]
    summary.paid, tendered = _paid(pairing.hits)
    summary.service = round(sum(hit.value for hit in body if hit.label is Label.SERVICE), 2)
    summary.rounding = next((hit.value for hit in body if hit.label is Label.ROUNDING), 0.0)
    summary.discount = round(sum(abs(hit.value) for hit in body if hit.label is Label.DISCOUNT), 2)
    subtotals = [hit for hit in body if hit.label is Label.SUBTOTAL]
    taxes = [hit for hit in body if hit.label is Label.TAX]
    _set_total(summary, body, pairing, tendered, subtotals)
    if summary.total is None and subtotals and taxes:
        # The total's label garbled ("Tordl 23.26"): a line after the subtotal ending in subtotal + tax.
        expected = _expected_totals(subtotals, taxes, summary.service)
        summary.total_index, summary.total = next(
            (
                (index, value)
                for index in range(subtotals[0].index + 1, len(lines))
                if (value := _same_line_value(lines[index], minor)) is not None
                and any(close(value, e) for e in expected)
            ),
            (None, None),
        )
    if summary.total is None and not subtotals:
        summary.total_index, summary.total = _repeated_amount(lines, labels, minor) or (None, None)
    paid_in = {hit.value for hit in pairing.hits if hit.label is Label.TENDERED and hit.value > 0}
    if summary.total is None and len(paid_in) == 1 and Label.CHANGE not in labels:
        # No total read, one amount tendered and no change printed: it was paid exactly ("CASH 1039.00").
        summary.total = paid_in.pop()
    summary.subtotal = _pick_subtotal(summary, subtotals)
    summary.tax = _pick_tax(summary, taxes) if taxes else _pick_tax(summary, summary.values(Label.TAX_INCLUDED))
    return summary


def _repeated_amount(lines: list[str], labels: list[Label | None], minor: int) -> tuple[int, float] | None:
    """With no total or subtotal read at all (their labels garbled: "TCI TA L $99.82"), the largest amount
    that ends two or more lines, as a total does (printed as the total and again as the amount charged or
    tendered): (its first line, the amount). Lines labelled as something else (tax, change, ...) do not count.
    """
    seen: dict[float, list[int]] = {}
    for index, (line, label) in enumerate(zip(lines, labels, strict=True)):
        if label is not None and label not in TOTAL_TIER and label is not Label.TENDERED:
            continue
        value = _same_line_value(line, minor)
        if value is not None and value > 0:
            seen.setdefault(value, []).append(index)
    repeated = [(value, where) for value, where in seen.items() if len(where) >= 2]
    if not repeated:
        return None
    value, where = max(repeated)
    return where[0], value
