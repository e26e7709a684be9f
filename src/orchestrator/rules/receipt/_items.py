"""Line items: the rows between the receipt header and its money summary.

A row may be printed on one line (``2 x Coffee 3.50 7.00``, ``BANANAS 1.14 T``) or, in box-per-line OCR
text, spread over consecutive lines: a quantity, the name, a unit price and the line amount. Each line in
the item region gets a type (name text, quantity, quantity-at-price, amount, code, or noise such as tax
codes and column headings), and rows are rebuilt from the sequence. Whether names come before or after
their numbers is told by what the region starts with. Negative amounts (``-1.00``, ``1.00-``, ``(1.00)``)
stay negative: they are discounts and refunds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from orchestrator.rules.models import LineItem
from orchestrator.rules.receipt._amounts import find_amounts, parse_number
from orchestrator.rules.receipt._dates import find_dates
from orchestrator.rules.receipt._labels import SUMMARY_LABELS, Label, is_column_word
from orchestrator.rules.receipt._summary import close, is_filler, money_only

LOOKBACK = 4
"""How many lines above the first priced line may still belong to the first item."""

_UNITS = r"(?:PKT|PKTS|PCS|PC|UNIT|UNITS|EA|KG|G|L|LB|LBS|ROLL|BOX|BTL|X|NOS)"
_QTY_RE = re.compile(
    rf"^(?:[xX]\s*)?(?P<q>\d{{1,3}})\s*(?:{_UNITS}\b|[xX@*])?\s*\*?$"
    rf"|^(?P<d>\d{{1,4}}[.,]\d{{1,3}})\s*(?:{_UNITS}\b|[xX@])\s*\*?$",
    re.IGNORECASE,
)
_QTY_AT_RE = re.compile(
    rf"^(?:(?P<q>\d{{1,4}}(?:[.,]\d{{1,3}})?)\s*(?:{_UNITS})?\s*)?(?:[xX×@*]|\bAT\b)\s*"
    r"(?P<cur>RM|\$|€|£|US\$)?\s*(?P<p>\d+(?:[.,]\d{1,4})?)(?:\s*/\s*[A-Za-z]+)?$",
    re.IGNORECASE,
)
_CODE_RE = re.compile(r"^(?:\d{4,}|[A-Z]{1,3}-[A-Z]?\d{2,}[A-Z]?|[A-Z]{1,2}\d{4,}|\d{4,}-\d+)$")
# "2 x Coffee", "2x Coffee", "1-Large Diet Coke", "1 21.Dry-Fried Eggplant" (a menu number after the count),
# "1HAM&EGG" (glued).
_LEADING_QTY_RE = re.compile(
    r"^(?P<q>\d{1,3})\s*(?:[xX×]\s*(?=\S)|-(?=[A-Za-z]{2}))|^(?P<n>\d{1,3})\s+(?=\S)|^(?P<g>[1-9])(?=[A-Za-z]{3})"
)
# A quantity printed with decimals before the name: "1,00 Solomillo Parrilla", "2.000 Coke 3.00".
_LEADING_DECIMAL_QTY_RE = re.compile(r"^(?P<q>\d{1,3}[.,]\d{1,3})\s+(?=[A-Za-z(])")
# Numbers with a decimal point left between a name and its amount: a quantity or unit price whose space OCR
# lost ("PADDU 1.00120.00 120.00"), or a quantity column ("FILTER COFFEE 1.006 60.00").
_TRAILING_DECIMALS_RE = re.compile(r"(?:\s+\d+[.,]\d{2}[\d.,]*)+$")
# A modifier's count behind its marks: "** 1 RARE", "**1FRENCH FRIES".
_MARKED_QTY_RE = re.compile(r"^\*+\s*(?=\d{1,2}\s*[A-Za-z])")
# A count and a space before a name of words: "1 Coke", "2 SIDE YOGURT, do not burn".
_SPACED_COUNT_RE = re.compile(r"^(?P<n>\d{1,2})\s+(?=[A-Za-z]{3})")
# A small count standing alone after a name of words: "BURGER SINGLE 1" (the amount follows). Not after a
# unit-like word ("Size 10", "Pack 6") or a number ("Route 66 2").
_TRAILING_QTY_RE = re.compile(r"(?P<word>[A-Za-z)][\w.#)]*)\s+(?P<q>[1-9]\d?)$")
_NOT_QTY_BEFORE = frozenset("SIZE PACK PK NO NO. NR # OZ ML CT GAL LB KG G L PCS PC TABLE NUMBER".split())
# "2 x 3.50", "2 @ 3.50", and weighed goods: "1.32 lb @ 0.59/lb", "0.45 kg x 2.99 /kg"
_INLINE_QTY_AT_RE = re.compile(
    rf"\s(?P<q>\d{{1,4}}(?:[.,]\d{{1,3}})?)\s*(?:{_UNITS}\b)?\s*(?:[xX×@]|\bAT\b)\s*(?:RM|\$|€|£)?\s*"
    rf"(?P<p>\d+[.,]\d{{2,4}})(?:\s*/\s*(?:{_UNITS}|EA)\b)?\s*$",
    re.IGNORECASE,
)
# "Latte 2x3.50 7.00": OCR often drops the spaces around a quantity's "x"; the unit price then touches it.
_GLUED_QTY_AT_RE = re.compile(r"\s\d{1,4}(?:[.,]\d{1,3})?\s*[xX×@]\s*(?:RM|\$|€|£)?$")
# Lines of the ticket header above the items: "Table: 4", "TBL 6", "Guests 2", "ORDER #12", "DINE IN".
_HEADERISH_RE = re.compile(
    r"[:#=]|(?:^|\b)(?:TABLE|TBL|SERVER|GUESTS?|PAX|CASHIER|CHECK|ORDER|RECEIPT|INVOICE|STATION|TERMINAL|REG|"
    r"TRANS?|OPERATOR|CLERK|HOST|COVERS?|BILL|DOC|POS)\s*(?:NO\.?)?\s*\d"
    r"|(?:^|\b)(?:DINE\s*IN|TAKE\s*(?:AWAY|OUT)|REPRINT|COPY|DUPLICATE|SALESPERSON|TEL|FAX|PHONE)\b",
    re.IGNORECASE,
)
_TIME_RE = re.compile(r"\b\d{1,2}:\d{2}")
# OCR's readings of a weight unit: "Ib", "1b", "|b" for lb, "kq" for kg. Only where a unit stands: after a
# number ("1.32 Ib", "2.10Ib@") or a slash ("/Ib"), and before a non-letter. "2.101b" stays as it is: the
# "1" may be a digit of the weight.
_UNIT_CONFUSIONS_RE = re.compile(
    r"(?:(?<=\d)(?P<glued>I|\|)|(?<=\d\s)(?P<spaced>[I1|])|(?<=/)(?P<per>[I1|]))b(?P<s>s?)(?![A-Za-z])"
    r"|(?:(?<=\d)|(?<=\d\s)|(?<=/))(?P<kg>k)q(?![A-Za-z])"
)


def fix_unit_confusions(line: str) -> str:
    """Read OCR's look-alikes of weight units as the units: ``1.32 Ib @ 0.59/lb`` -> ``1.32 lb @ 0.59/lb``.

    >>> fix_unit_confusions("ChickenBreast 2.10Ib@4.99/|b 10.48"), fix_unit_confusions("Apples 0.45 kq x 2.99/kq")
    ('ChickenBreast 2.10lb@4.99/lb 10.48', 'Apples 0.45 kg x 2.99/kg')
    """
    if not any(mark in line for mark in ("Ib", "1b", "|b", "kq")):
        return line

    def unit(match: re.Match[str]) -> str:
        return "kg" if match["kg"] else "lb" + (match["s"] or "")

    return _UNIT_CONFUSIONS_RE.sub(unit, line)


class Kind(Enum):
    """What one line in the item region is."""

    TEXT = "text"
    QTY = "qty"
    QTY_AT = "qty_at"
    MONEY = "money"
    INLINE = "inline"
    CODE = "code"


@dataclass
class Token:
    """A typed line of the item region."""

    kind: Kind
    text: str
    values: list[float] = field(default_factory=list)
    qty: float | None = None
    unit: float | None = None


def _number(text: str) -> float:
    return parse_number(text)[0]


def _inline(line: str, minor: int) -> Token | None:
    """A whole item row on one line: name text followed by one or more amounts."""
    amounts = [a for a in find_amounts(line) if not a.percent]
    money = [a for a in amounts if a.is_money_in(minor)]
    if not money:
        return None
    first = money[0]
    glued = first.start == 0 or not line[first.start - 1].isspace()
    if glued and line[first.start - 1 : first.start] != ")" and not _GLUED_QTY_AT_RE.search(line[: first.start]):
        return None  # "2Tapasfor£7.50...", "Pizza.70g": an amount glued to a word is part of the name
    before = line[: first.start].strip()
    name = _TRAILING_DECIMALS_RE.sub("", before)
    quantity_column = name != before  # the stripped numbers were the quantity (or unit price) column
    tail = line[money[-1].end :]
    if len(re.sub(r"[^A-Za-z]", "", name)) < 2 or len(re.sub(r"[^A-Za-z]", "", tail)) > 3:
        return None
    values = [a.value for a in money if a.start >= first.start]
    qty: float | None = None
    unit: float | None = None
    at = _INLINE_QTY_AT_RE.search(line[: money[-1].start] if len(values) > 1 else line)
    if at and len(values) > 1:
        qty, unit = _number(at["q"]), _number(at["p"])
        name = line[: at.start()].strip()
    name = _MARKED_QTY_RE.sub("", name)
    lead = _LEADING_QTY_RE.match(name)
    if lead and qty is None and len(name) > lead.end():
        qty = float(lead["q"] or lead["n"] or lead["g"])
        name = name[lead.end() :].strip()
    trail = _TRAILING_QTY_RE.search(name)
    if trail and qty is None and not quantity_column and trail["word"].upper() not in _NOT_QTY_BEFORE:
        # "BURGER SINGLE 1 5.61": a quantity column printed between the name and the amount; before a unit
        # price and an amount ("PORK 2 12.00 24.00") only when the three agree (the amount read again if
        # OCR garbled it: "1 $2.25 $225").
        count = float(trail["q"])
        if len(values) == 2:
            values[1] = _agreeing(line[money[-1].start : money[-1].end], count * values[0]) or values[1]
        if len(values) == 1 or (len(values) == 2 and close(count * values[0], values[1])):
            qty = count
            name = name[: trail.start("q")].strip()
    elif qty is None and len(values) == 3:
        # "BeefOsso Bucco 3.36 $2.99 510.05": weight x unit price = amount, its "$" read as a 5.
        repaired = _agreeing(line[money[-1].start : money[-1].end], values[0] * values[1])
        if repaired is not None:
            qty, unit, values = values[0], values[1], [values[1], repaired]
    return Token(Kind.INLINE, name, values=values, qty=qty, unit=unit)


def _agreeing(printed: str, expected: float) -> float | None:
    """`expected` when the printed amount is it, or is it as OCR misreads it: the decimal point lost
    ("$225" for 2.25) or the "$" read as a 5 ("510.05" for $10.05); None otherwise. Only the arithmetic of the
    row (quantity x unit price) vouches for a reading."""
    digits = printed.strip().lstrip("$€£").strip()
    readings = [digits]
    if digits.startswith("5") and len(digits) > 1:
        readings.append(digits[1:])
    for reading in readings:
        try:
            value, decimals = parse_number(reading)
        except ValueError:
            continue
        if close(value, expected) or (decimals == 0 and close(value / 100, expected)):
            return round(expected, 2)
    return None


def tokenize(line: str, minor: int = 2) -> Token | None:
    """Type one line of the item region; None for noise (tax codes, column headings, percentages)."""
    stripped = fix_unit_confusions(line.strip())
    if not stripped or is_column_word(stripped):
        return None
    qty = _QTY_RE.match(stripped)
    if qty:
        return Token(Kind.QTY, stripped, qty=_number(qty["q"] or qty["d"]))
    at = _QTY_AT_RE.match(stripped)
    if at:
        return Token(Kind.QTY_AT, stripped, qty=_number(at["q"]) if at["q"] else None, unit=_number(at["p"]))
    money = money_only(stripped, minor)
    if money is not None:
        return Token(Kind.MONEY, stripped, values=[a.value for a in money])
    if _CODE_RE.match(stripped.upper()):
        return Token(Kind.CODE, stripped)
    lead = _LEADING_DECIMAL_QTY_RE.match(stripped)
    if lead:
        rest = stripped[lead.end() :]
        token = _inline(rest, minor) or Token(Kind.TEXT, rest)
        token.qty = token.qty if token.qty is not None else _number(lead["q"])
        return token
    inline = _inline(stripped, minor)
    if inline is not None:
        return inline
    if is_filler(stripped):
        return None
    count = _SPACED_COUNT_RE.match(stripped)
    if count:
        # "1 Coke" with its price on another line: the count is the quantity, not part of the name.
        return Token(Kind.TEXT, stripped[count.end() :], qty=float(count["n"]))
    return Token(Kind.TEXT, stripped)


def _is_item_line(line: str, label: Label | None, minor: int) -> bool:
    if label is not None or find_dates(line) or _TIME_RE.search(line):
        return False
    token = tokenize(line, minor)
    return token is not None and token.kind in (Kind.MONEY, Kind.INLINE)


def item_region(
    lines: list[str], labels: list[Label | None], start: int, minor: int = 2, stop: int | None = None
) -> tuple[int, int] | None:
    """(first, end) line indexes of the item rows between `start` and `stop`; None when there are none."""
    stop = len(lines) if stop is None else stop
    first_priced = next((i for i in range(start, stop) if _is_item_line(lines[i], labels[i], minor)), None)
    if first_priced is None:
        return None
    first = first_priced
    while first - 1 >= start and first_priced - first < LOOKBACK:
        previous = lines[first - 1]
        if labels[first - 1] is not None or _HEADERISH_RE.search(previous) or is_column_word(previous):
            break
        if find_dates(previous) or _TIME_RE.search(previous):
            break
        first -= 1
    end = next((i for i in range(first_priced, len(lines)) if labels[i] in SUMMARY_LABELS), len(lines))
    return first, end


@dataclass
class _Row:
    names: list[str] = field(default_factory=list)
    qty: float | None = None
    unit: float | None = None
    values: list[float] = field(default_factory=list)


def _make_item(name: str, values: list[float], qty: float | None, unit: float | None) -> LineItem:
    amount = values[-1]
    if unit is None and len(values) > 1 and values[0] != 0:
        unit = values[0]
    if qty is None and unit:
        ratio = amount / unit
        qty = round(ratio) if ratio >= 1 and close(ratio, round(ratio), 0.02) else 1.0
    if unit is None and qty and qty != 1 and amount:
        unit = round(amount / qty, 4)
    return LineItem(name=name, quantity=qty if qty else 1.0, unit_price=unit, amount=round(amount, 2))


def _rows_name_first(tokens: list[Token]) -> list[_Row]:
    rows: list[_Row] = []
    row = _Row()
    for position, token in enumerate(tokens):
        following = tokens[position + 1] if position + 1 < len(tokens) else None
        if token.kind is Kind.TEXT:
            if row.values:
                rows.append(row)
                row = _Row()
            row.names.append(token.text)
        elif token.kind in (Kind.QTY, Kind.QTY_AT):
            if row.values or (row.names and following is not None and following.kind is Kind.TEXT):
                rows.append(row)
                row = _Row()
            row.qty = token.qty if token.qty is not None else row.qty
            row.unit = token.unit if token.unit is not None else row.unit
        elif token.kind is Kind.MONEY:
            row.values.extend(token.values)
        elif token.kind is Kind.INLINE:
            if row.names or row.values:
                rows.append(row)
            rows.append(_Row(names=[token.text], qty=token.qty, unit=token.unit, values=token.values))
            row = _Row()
    rows.append(row)
    return rows


def _rows_name_after(tokens: list[Token]) -> list[_Row]:
    rows: list[_Row] = []
    row = _Row()
    for token in tokens:
        if token.kind is Kind.TEXT:
            row.names.append(token.text)
        elif token.kind is Kind.INLINE:
            rows.append(row)
            rows.append(_Row(names=[token.text], qty=token.qty, unit=token.unit, values=token.values))
            row = _Row()
        else:
            if row.names:
                rows.append(row)
                row = _Row()
            if token.kind is Kind.MONEY:
                row.values.extend(token.values)
            elif token.kind is not Kind.CODE:
                row.qty = token.qty if token.qty is not None else row.qty
                row.unit = token.unit if token.unit is not None else row.unit
    rows.append(row)
    return rows


_NOT_MODIFIER_RE = re.compile(r"^\(.*\)$|^[+*]{2}|[:%=]|\d[.,]\d|THANK", re.IGNORECASE)


def _is_modifier(name: str) -> bool:
    """A name line printed under an item without a price: a side, an option ("Fries", "+Chicken").

    Notes in parentheses, kitchen instructions (``++WELL DONE``), label lines and lines carrying an
    amount (``6.99 DSC -1.38``) are not.
    """
    return not _NOT_MODIFIER_RE.search(name.strip())


def _items_from_rows(rows: list[_Row], *, modifiers: bool) -> list[LineItem]:
    items: list[LineItem] = []
    for row in rows:
        if not row.values:
            if modifiers and items:
                items.extend(LineItem(name=name, amount=0.0) for name in row.names if _is_modifier(name))
            continue
        if not row.names:
            continue
        if len(row.names) == len(row.values) > 1 and row.qty is None:
            items.extend(LineItem(name=n, amount=round(v, 2)) for n, v in zip(row.names, row.values, strict=True))
            continue
        if modifiers and items:
            items.extend(LineItem(name=name, amount=0.0) for name in row.names[:-1] if _is_modifier(name))
        name = row.names[-1] if modifiers else " ".join(row.names)
        items.append(_make_item(name, row.values, row.qty, row.unit))
    return items


def find_items(
    lines: list[str], labels: list[Label | None], start: int = 0, minor: int = 2, stop: int | None = None
) -> tuple[list[LineItem], int | None]:
    """The line items between lines `start` and `stop` (the total), and where the summary begins."""
    region = item_region(lines, labels, start, minor, stop)
    if region is None:
        return [], None
    first, end = region
    tokens = [token for line in lines[first:end] if (token := tokenize(line, minor)) is not None]
    # Names before or after their numbers: whichever reading pairs more names with amounts.
    name_first = _rows_name_first(tokens)
    name_after = _rows_name_after(tokens)
    if _complete(name_after) > _complete(name_first):
        return _items_from_rows(name_after, modifiers=False), end if end < len(lines) else None
    return _items_from_rows(name_first, modifiers=True), end if end < len(lines) else None


def _complete(rows: list[_Row]) -> int:
    return sum(1 for row in rows if row.names and row.values)
