"""Do the numbers of a parsed receipt agree? Items against subtotal and total, subtotal + tax against total.

A receipt may print its prices with tax included or excluded, and may add a service charge or tip, take
off a discount or round the cash total; a check passes when some combination of the adjustments that are
*printed on the receipt* explains the difference. The result is a confidence in [0, 1] and a list of
human-readable issues, so a caller sees a mismatch instead of silently getting a wrong number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product

from orchestrator.rules.models import LineItem

TOLERANCE = 0.06
"""Amounts closer than this agree (covers cash rounding to 5 sen/cents)."""

_TOTAL_FOUND = 0.4
_CHECK_PASSED = 0.3
_CHECK_UNKNOWN = 0.1


@dataclass(frozen=True)
class Adjustments:
    """What the summary prints between the items and the total."""

    tax: float | None = None
    service: float = 0.0
    discount: float = 0.0
    rounding: float = 0.0

    def variants(self) -> set[float]:
        """Every amount the printed adjustments can add to a pre-adjustment figure."""
        parts = [self.tax or 0.0, self.service, -abs(self.discount), self.rounding]
        return {
            round(sum(p for p, use in zip(parts, mask, strict=True) if use), 2) for mask in product((0, 1), repeat=4)
        }


@dataclass
class Consistency:
    """The outcome of checking a receipt's numbers."""

    confidence: float
    issues: list[str] = field(default_factory=list)


def agrees(base: float, target: float, adjustments: Adjustments) -> bool:
    """Whether `base` plus some combination of the printed adjustments gives `target`."""
    return any(abs(base + delta - target) <= TOLERANCE for delta in adjustments.variants())


_agrees = agrees


def check(
    items_sum: float | None,
    subtotal: float | None,
    total: float | None,
    adjustments: Adjustments,
) -> Consistency:
    """Check items sum vs subtotal vs total, and subtotal + tax vs total; return confidence and issues."""
    issues: list[str] = []
    confidence = _TOTAL_FOUND if total is not None else 0.0
    if total is None:
        issues.append("no total found")

    if items_sum is None:
        confidence += _CHECK_UNKNOWN
    elif subtotal is not None and _agrees(items_sum, subtotal, adjustments):
        confidence += _CHECK_PASSED
    elif total is not None and _agrees(items_sum, total, adjustments):
        confidence += _CHECK_PASSED
    elif subtotal is not None or total is not None:
        against = f"the subtotal {subtotal:.2f}" if subtotal is not None else f"the total {total:.2f}"
        issues.append(f"items add up to {items_sum:.2f}, which does not match {against}")
    else:
        confidence += _CHECK_UNKNOWN

    if subtotal is None or total is None:
        confidence += _CHECK_UNKNOWN if total is not None else 0.0
    elif _agrees(subtotal, total, adjustments):
        confidence += _CHECK_PASSED
    else:
        tax = adjustments.tax or 0.0
        issues.append(
            f"subtotal {subtotal:.2f} + tax {tax:.2f} = {subtotal + tax:.2f}, "
            f"which does not match the total {total:.2f}"
        )
    return Consistency(confidence=round(min(confidence, 1.0), 2), issues=issues)


LINE_PENALTY = 0.15
"""Confidence taken off per item line whose quantity x unit price is not its amount (at most twice)."""


def line_mismatches(items: Iterable[LineItem]) -> list[str]:
    """One issue per item whose quantity times unit price disagrees with its amount.

    A unit price printed to the cent is off by up to half a cent per unit, so the tolerance grows with the
    quantity: ``1.32 lb @ 0.59/lb 0.78`` (0.7788) agrees, ``1 x 1.32 = 0.78`` does not.
    """
    issues: list[str] = []
    for item in items:
        if item.unit_price is None or not item.quantity:
            continue
        expected = item.quantity * item.unit_price
        if abs(abs(expected) - abs(item.amount)) > 0.011 + 0.005 * abs(item.quantity):
            issues.append(
                f"item {item.name!r}: quantity {item.quantity:g} x unit price {item.unit_price:.2f} = "
                f"{expected:.2f}, which does not match its amount {item.amount:.2f}"
            )
    return issues
