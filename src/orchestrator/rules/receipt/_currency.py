"""Which currency a receipt is in, from the marks on its amounts and words in its text.

``RM`` is MYR, ``€`` EUR, ``£`` GBP. A bare ``$`` is USD unless the receipt names another dollar
country (Singapore, Canada, Australia, New Zealand, Hong Kong). Without any mark, a Malaysian or
Singaporean company form (``SDN BHD``, ``PTE LTD``) still tells the currency.
"""

from __future__ import annotations

import re
from collections import Counter

from orchestrator.rules.receipt._amounts import ISO_CODES, find_amounts

_MARKS = {
    "RM": "MYR",
    "MYR": "MYR",
    "US$": "USD",
    "U$": "USD",
    "USD": "USD",
    "S$": "SGD",
    "SG$": "SGD",
    "SGD": "SGD",
    "A$": "AUD",
    "AU$": "AUD",
    "AUD": "AUD",
    "C$": "CAD",
    "CA$": "CAD",
    "CAD": "CAD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "MX$": "MXN",
    "R$": "BRL",
    "€": "EUR",
    "EUR": "EUR",
    "EURO": "EUR",
    "£": "GBP",
    "GBP": "GBP",
    "¥": "JPY",
    "JPY": "JPY",
    "₹": "INR",
    "INR": "INR",
    "Rs": "INR",
    "Rs.": "INR",
    "IDR": "IDR",
    "Rp": "IDR",
    "CHF": "CHF",
    "XPF": "XPF",
    "KRW": "KRW",
    "₩": "KRW",
}
_CODE_WORD_RE = re.compile(r"(?<![A-Z])(RM|MYR|USD|EUR|EURO|GBP|SGD|CAD|AUD|INR|IDR|CHF|JPY|XPF|KRW)(?![A-Z])")
# A three-letter code glued to a label in space-less OCR text: "TOTALXPF", "TOTAL:MYR13.10".
_GLUED_CODE_RE = re.compile(r"(?<=[A-Z:])(MYR|USD|EUR|GBP|SGD|CAD|AUD|INR|IDR|CHF|JPY|XPF|KRW)(?=\d|$)")
_DOLLAR_COUNTRIES = (
    (re.compile(r"SINGAPORE|\bPTE\.?\s*LTD\b"), "SGD"),
    (re.compile(r"CANADA|\bHST\b|\bTPS\b|\bTVQ\b|QUEBEC|ONTARIO|BRITISH COLUMBIA|ALBERTA"), "CAD"),
    (re.compile(r"AUSTRALIA|\bABN\b"), "AUD"),
    (re.compile(r"NEW ZEALAND"), "NZD"),
    (re.compile(r"HONG KONG"), "HKD"),
)
_NO_MARK_CONTEXT = (
    (re.compile(r"\bSDN\.?\s*BHD\b|MALAYSIA|\bBHD\b"), "MYR"),
    (re.compile(r"SINGAPORE|\bPTE\.?\s*LTD\b"), "SGD"),
)


def detect_currency(lines: list[str]) -> str | None:
    """The ISO 4217 code of the receipt's currency, or None when nothing tells it."""
    votes: Counter[str] = Counter()
    for line in lines:
        for amount in find_amounts(line):
            if amount.currency:
                mark = amount.currency
                code = _MARKS.get(mark) or (mark if mark in ISO_CODES else "USD" if mark.endswith("$") else "")
                votes[code] += 1
        for word in _CODE_WORD_RE.findall(line.upper()):
            votes[_MARKS[word]] += 1
        for word in _GLUED_CODE_RE.findall(line.upper()):
            votes[_MARKS[word]] += 1
    votes.pop("", None)
    upper = "\n".join(lines).upper()
    if votes:
        code = votes.most_common(1)[0][0]
        if code == "USD" and not any(m in upper for m in ("US$", "USD", "U$")):
            for pattern, country_code in _DOLLAR_COUNTRIES:
                if pattern.search(upper):
                    return country_code
        return code
    for pattern, code in _NO_MARK_CONTEXT:
        if pattern.search(upper):
            return code
    return None


def prefers_month_first(currency: str | None) -> bool:
    """Whether ambiguous numeric dates (03/04/2018) are read month-first: in US-dollar receipts."""
    return currency == "USD"
