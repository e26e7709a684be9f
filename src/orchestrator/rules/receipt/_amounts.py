"""Money amounts in receipt text: currency marks, thousands separators, decimal commas, negatives, OCR noise.

    >>> [m.value for m in find_amounts("2 x 3.50   RM 1.234,56   (1.00)   5.OO-") if m.is_money]
    [3.5, 1234.56, -1.0, -5.0]

Every amount keeps how many decimals it was printed with, so callers can tell a money value (``12.50``)
from a count (``2``) or a unit price (``0.7500``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ISO_CODES = frozenset(
    "MYR USD SGD EUR GBP CAD AUD NZD HKD INR IDR JPY KRW CNY RMB TWD THB PHP VND AED SAR QAR KWD OMR BHD "
    "CHF SEK NOK DKK PLN CZK HUF TRY ZAR BRL MXN XPF".split()
)
"""ISO 4217 codes a receipt may print next to an amount."""

# Currency marks, longest first so "US$" wins over "$". Codes are matched case-sensitively (upper case),
# which keeps words such as "rm" or "eur" inside names from counting.
_CURRENCY_MARKS = (
    *sorted(ISO_CODES),
    "US$",
    "U$",
    "S$",
    "SG$",
    "A$",
    "AU$",
    "C$",
    "CA$",
    "NZ$",
    "HK$",
    "MX$",
    "R$",
    "RM",
    "Rs.",
    "Rs",
    "Rp",
    "$",
    "€",
    "£",
    "¥",
    "₹",
)
_CUR = "|".join(re.escape(mark) for mark in sorted(_CURRENCY_MARKS, key=len, reverse=True))

# ".26" alone is an amount (a leading zero dropped), but "NO.53" is not.
# Thousands groups and decimals never share a separator: "7.020.44" is two amounts run together, not 7020.44.
_NUMBER = (
    r"\d{1,3}(?:\.\d{3})+(?:,\d{1,4})?|\d{1,3}(?:,\d{3})+(?:\.\d{1,4})?|\d{1,3}(?:'\d{3})+(?:[.,]\d{1,4})?"
    r"|\d+(?:[.,]\d{1,4})?|(?<![A-Za-z])[.,]\d{2}"
)
_AMOUNT_RE = re.compile(
    rf"""
    (?<![\d.,])
    (?P<lead>[-−–]\s?)?
    (?P<open>\()?
    (?:(?P<cur>{_CUR})\s?)?
    (?P<sign>[-−])?
    (?P<num>{_NUMBER})
    (?!\d|[.,]\d)
    (?:\s?(?P<cur2>€|\$|£|EUR|RM)(?!\s?[-(]?\d))?  # not the next amount's own mark ("FT2 $3.49")
    (?P<close>\))?
    (?P<trail>-(?![\w\d]))?
    (?P<pct>\s?%)?
    """,
    re.VERBOSE,
)

# A token that is a number except for OCR look-alikes: 5.OO, S.00, l2.50, RM1O.00.
_OCR_TOKEN_RE = re.compile(r"(?P<pre>[-(]?(?:RM|\$|€|£)?)(?P<body>[0-9OoSsIl]{1,7}[.,][0-9OoSsIl]{2})(?P<post>[-)]?)")
_OCR_MAP = str.maketrans({"O": "0", "o": "0", "S": "5", "s": "5", "I": "1", "l": "1"})


@dataclass(frozen=True)
class Amount:
    """One amount found in a line of text."""

    value: float
    decimals: int
    currency: str | None
    start: int
    end: int
    percent: bool = False

    @property
    def is_money(self) -> bool:
        """Printed like money: two decimals, or with a currency mark."""
        return self.is_money_in(2)

    def is_money_in(self, minor: int) -> bool:
        """Printed like money in a currency with `minor` decimals (2 mostly; 3 for KWD, OMR, ...)."""
        if self.percent:
            return False
        # With a currency mark, "$5" and an OCR-clipped "£136.5" are money too.
        return self.decimals == minor or (self.currency is not None and self.decimals in (0, 1, minor))


def fix_ocr_digits(text: str) -> str:
    """Repair number tokens where OCR read digits as letters (``5.OO`` -> ``5.00``, ``S.00`` -> ``5.00``)."""

    def repair(match: re.Match[str]) -> str:
        body = match.group("body")
        if not any(ch.isdigit() for ch in body) and body[-2:] not in ("OO", "oo"):
            return match.group(0)
        pre = match.group("pre")
        if body[0] in "Ss" and body[1:2].isdigit() and not any(mark in pre for mark in "$€£RM"):
            pre, body = pre + "$", body[1:]  # "S3.21": a dollar sign read as an S, not a 5
        return pre + body.translate(_OCR_MAP) + match.group("post")

    tokens = text.split(" ")
    fixed = []
    for token in tokens:
        match = _OCR_TOKEN_RE.fullmatch(token)
        fixed.append(repair(match) if match and not token.isdigit() else token)
    return " ".join(fixed)


def parse_number(num: str) -> tuple[float, int]:
    """Read a printed number with either decimal convention; return (value, decimals printed).

    ``1.234,56`` and ``1,234.56`` are both 1234.56; ``2,49`` is 2.49; ``1,234`` is 1234; ``2.516`` is 2.516.
    """
    if num[0] in ".,":
        return float("0." + num[1:]), len(num) - 1
    num = num.replace("'", "")
    last = max(num.rfind("."), num.rfind(","))
    if last < 0:
        return float(num), 0
    head, tail = num[:last], num[last + 1 :]
    sep = num[last]
    other = "," if sep == "." else "."
    if other in head or (sep in head):
        # Several separators: the last one is the decimal point when it is followed by 1-2 digits.
        if len(tail) == 3 and other not in head:
            return float(num.replace(sep, "")), 0
        return float(head.replace(other, "").replace(sep, "") + "." + tail), len(tail)
    if sep == "," and len(tail) == 3:
        return float(head + tail), 0
    return float(head + "." + tail), len(tail)


def _currency_of(mark: str | None) -> str | None:
    if mark is None:
        return None
    return mark.strip()


def find_amounts(text: str) -> list[Amount]:
    """Every amount in a line, left to right (percentages are returned with ``percent=True``)."""
    text = fix_ocr_digits(text)
    found: list[Amount] = []
    for match in _AMOUNT_RE.finditer(text):
        num = match.group("num")
        value, decimals = parse_number(num)
        negative = bool(match.group("lead") or match.group("sign") or match.group("trail"))
        if match.group("open") and match.group("close"):
            negative = True
        currency = _currency_of(match.group("cur") or match.group("cur2"))
        found.append(
            Amount(
                value=-value if negative else value,
                decimals=decimals,
                currency=currency,
                start=match.start(),
                end=match.end(),
                percent=bool(match.group("pct")),
            )
        )
    return found


ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "XPF", "VND", "CLP", "ISK", "UGX", "PYG"})


def minor_unit(lines: list[str], currency: str | None = None) -> int:
    """How many decimals the receipt's money has: 0 for yen and the like, 3 when three-decimal amounts
    clearly dominate (KWD, OMR, ...), else 2."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    two = three = 0
    for line in lines:
        for amount in find_amounts(line):
            if not amount.percent:
                two += amount.decimals == 2
                three += amount.decimals == 3
    return 3 if three >= 3 and three > 2 * two else 2


def parse_amount(text: str) -> float | None:
    """The one money amount a short string holds, e.g. ``"RM9.00"`` -> 9.0; None when there is none."""
    amounts = [a for a in find_amounts(text) if not a.percent]
    money = [a for a in amounts if a.is_money] or amounts
    return money[-1].value if money else None
