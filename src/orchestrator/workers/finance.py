"""Arithmetic on documents: totals, tax, and duplicate detection across invoices and receipts."""

from __future__ import annotations

import hashlib
import re
from difflib import SequenceMatcher
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.context import report_mode
from orchestrator.errors import ToolError
from orchestrator.registry import tool


class Totals(BaseModel):
    """Sums over line items."""

    item_count: int
    subtotal: float
    tax: float
    total: float
    by_category: dict[str, float] = Field(default_factory=dict)


class TaxResult(BaseModel):
    net: float
    tax: float
    gross: float
    rate: float


def _amount(item: Any, index: int) -> float:
    value = item.get("amount") if isinstance(item, dict) else item
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"items[{index}]: expected a number or an object with a numeric 'amount', got {item!r}")
    return float(value)


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def calculate_totals(
    items: list[Any], tax_rate: float | None = None, tax: float | None = None, decimals: int = 2
) -> Totals:
    """Add up line items: subtotal, tax (given, or from a rate) and total, with sums per category.

    Args:
        items: numbers, or objects with an `amount` (and optionally a `category`), e.g. step:categorize.items.
        tax_rate: tax as a fraction of the subtotal (0.06 for 6%), when the tax is not given.
        tax: the tax amount, when known (e.g. step:parse.tax); wins over tax_rate.
        decimals: rounding of the results.
    """
    if tax_rate is not None and not 0 <= tax_rate < 1:
        raise ToolError(f"tax_rate must be a fraction between 0 and 1 (e.g. 0.06 for 6%), got {tax_rate}")
    report_mode("function")
    subtotal = 0.0
    by_category: dict[str, float] = {}
    for index, item in enumerate(items):
        amount = _amount(item, index)
        subtotal += amount
        category = item.get("category") if isinstance(item, dict) else None
        if category:
            by_category[str(category)] = by_category.get(str(category), 0.0) + amount
    tax_amount = tax if tax is not None else subtotal * (tax_rate or 0.0)
    return Totals(
        item_count=len(items),
        subtotal=round(subtotal, decimals),
        tax=round(tax_amount, decimals),
        total=round(subtotal + tax_amount, decimals),
        by_category={k: round(v, decimals) for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
    )


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def calculate_tax(amount: float, rate: float, inclusive: bool = False) -> TaxResult:
    """Split an amount into net, tax and gross.

    Args:
        amount: the amount; net unless `inclusive` is true.
        rate: the tax rate as a fraction (0.2 for 20%).
        inclusive: whether `amount` already includes the tax.
    """
    if not 0 <= rate < 1:
        raise ToolError(f"rate must be a fraction between 0 and 1 (e.g. 0.2 for 20%), got {rate}")
    net = amount / (1 + rate) if inclusive else amount
    return TaxResult(net=round(net, 2), tax=round(net * rate, 2), gross=round(net * (1 + rate), 2), rate=rate)


class DuplicateGroup(BaseModel):
    indices: list[int] = Field(description="positions in the input list")
    names: list[str] = Field(default_factory=list)
    reason: str
    similarity: float


class DuplicateReport(BaseModel):
    documents: int
    groups: list[DuplicateGroup] = Field(default_factory=list)
    duplicates: int = Field(description="documents that repeat an earlier one")


_NOISE = re.compile(r"[^a-z0-9]+")


def _norm(value: Any) -> str:
    return _NOISE.sub("", str(value or "").lower())


def _fingerprint(doc: dict[str, Any]) -> str:
    """Exact identity: the same seller, date and total (an invoice number, when present, too)."""
    key = "|".join(_norm(doc.get(k)) for k in ("merchant", "date", "total", "invoice_number"))
    return hashlib.sha256(key.encode()).hexdigest()


def _items_text(doc: dict[str, Any]) -> str:
    items = doc.get("items") or []
    return " ".join(f"{_norm(i.get('name'))}:{i.get('amount')}" for i in items if isinstance(i, dict))


def _similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    if _norm(a.get("total")) != _norm(b.get("total")) or not a.get("total"):
        return 0.0
    merchant = SequenceMatcher(None, _norm(a.get("merchant")), _norm(b.get("merchant"))).ratio()
    items = SequenceMatcher(None, _items_text(a), _items_text(b)).ratio()
    same_date = 1.0 if _norm(a.get("date")) == _norm(b.get("date")) and a.get("date") else 0.0
    return 0.4 * merchant + 0.4 * items + 0.2 * same_date


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def detect_duplicates(
    documents: list[dict[str, Any]], names: list[str] | None = None, threshold: float = 0.85
) -> DuplicateReport:
    """Find documents that repeat another: same seller, date and total (hash), or nearly the same content.

    Args:
        documents: parsed documents (e.g. the list from a for_each line_item_parser step).
        names: labels for the documents (e.g. file names), in the same order.
        threshold: similarity (0-1) above which two documents with the same total count as duplicates.
    """
    if names is not None and len(names) != len(documents):
        raise ToolError(f"names has {len(names)} entries but documents has {len(documents)}")
    labels = names or [str(i) for i in range(len(documents))]
    parent = list(range(len(documents)))
    reasons: dict[int, tuple[str, float]] = {}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[str, int] = {}
    for i, doc in enumerate(documents):
        fp = _fingerprint(doc)
        if fp in seen and doc.get("total") is not None:
            parent[find(i)] = find(seen[fp])
            reasons[find(i)] = ("same merchant, date and total", 1.0)
        seen.setdefault(fp, i)
    for i in range(len(documents)):
        for j in range(i + 1, len(documents)):
            if find(i) == find(j):
                continue
            score = _similarity(documents[i], documents[j])
            if score >= threshold:
                parent[find(j)] = find(i)
                reasons.setdefault(find(i), (f"near-identical content ({score:.2f})", score))
    groups: dict[int, list[int]] = {}
    for i in range(len(documents)):
        groups.setdefault(find(i), []).append(i)
    out = [
        DuplicateGroup(
            indices=members,
            names=[labels[m] for m in members],
            reason=reasons.get(root, ("same merchant, date and total", 1.0))[0],
            similarity=round(reasons.get(root, ("", 1.0))[1], 3),
        )
        for root, members in groups.items()
        if len(members) > 1
    ]
    return DuplicateReport(documents=len(documents), groups=out, duplicates=sum(len(g.indices) - 1 for g in out))
