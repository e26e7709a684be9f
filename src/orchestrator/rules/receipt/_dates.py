"""Dates as receipts print them: 12/01/2018, 2018-01-12, 12-01-18, 12 Jan 2018, 15 MAR 18, Jan 12, 2018, 04NOV'17.

    >>> [m.date.isoformat() for m in find_dates("DATE: 15 MAR 18  TIME 10:02")]
    ['2018-03-15']

A numeric date such as ``03/04/2018`` can be read day-first or month-first; :class:`DateMatch` keeps every
valid reading so the caller can decide with context (currency, other dates on the receipt).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import date

# Month names and common abbreviations: English, Malay, French, German, Spanish, Italian, Dutch.
_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januari janvier janv januar jän enero ene gennaio gen januari",
        "february feb februari fevrier févr février fev februar febrero febbraio",
        "march mar mac mars märz marz maerz marzo mrt maart",
        "april apr avril avr abril aprile",
        "may mei mai mayo maggio mag",
        "june jun juni juin junio giugno giu",
        "july jul julai juli juillet juil julio luglio lug",
        "august aug ogos ogo agustus aout août août agosto ago augustus",
        "september sep sept septembre settembre set septiembre",
        "october oct okt oktober octobre ottobre ott octubre",
        "november nov novembre noviembre",
        "december dec dis disember decembre décembre dez dezember diciembre dic dicembre",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_MONTH_ALT = "|".join(sorted((re.escape(n) for n in _MONTHS), key=len, reverse=True))
_SEP = r"[-/.]"
# A year may run straight into a time in squashed OCR text ("4/4/20127:33AM", "06/01/1812.17: 26 PM").
_TIME_AFTER = r"(?=[.,]?\s?\d{1,2}\s?[:.]\s?\d{2})"
_YEAR_END = rf"(?:(?!\d)|{_TIME_AFTER})"

_Y = rf"(?:(?:19|20)\d{{2}}{_YEAR_END}|\d{{2}}(?:(?!\d|[.,]\d)|{_TIME_AFTER}))"

# After a month name: a 4-digit year after any separator, a 2-digit one only after a space, comma or quote.
_TEXT_YEAR = (
    rf"(?:[\s\-/.,']*(?P<y>(?:19|20)\d{{2}}{_YEAR_END})"
    rf"|[\s\-/,']*(?P<y2>\d{{2}})(?:(?!\d|[.,]\d)|{_TIME_AFTER}))"
)

_ISO_RE = re.compile(
    rf"(?<!\d)(?P<y>(?:19|20)\d{{2}})(?P<s>{_SEP})(?P<m>\d{{1,2}})(?P=s)(?P<d>\d{{1,2}})(?:(?!\d)|(?<=\d\d){_TIME_AFTER})"
)
# "/" may carry a space either side in OCR text ("27/ 03/2018"); "-" and "." must repeat.
_NUMERIC_RE = re.compile(
    rf"(?<![\d/.,])(?P<a>\d{{1,2}})(?:(?P<s>[-.]|\s-\s)(?P<b>\d{{1,2}})(?P=s)|\s?/\s?(?P<b2>\d{{1,2}})\s?/\s?"
    # OCR read the first "/" as a comma: "02,22/2014".
    rf"|,(?P<b3>\d{{1,2}})/)"
    rf"(?P<y>{_Y})"
)
# The same with a 4-digit year, glued to digits on either side ("100021911/03/2018", "17/01/201842153": a time
# whose colons OCR dropped), a space beside a separator ("16-04 -201814:51"): tried only when no date is found.
_GLUED_NUMERIC_RE = re.compile(r"(?P<a>\d{1,2})\s?(?P<s>[-/.])\s?(?P<b>\d{1,2})\s?(?P=s)\s?(?P<y>(?:19|20)\d{2})")
# Eight digits alone that make a date of this century, day first or ISO order ("27032018": OCR dropped the
# slashes): tried last of all.
_COMPACT_RE = re.compile(r"(?<![\d.,/:-])(?P<digits>\d{8})(?![\d.,/:-])")
_DAY_MONTH_RE = re.compile(
    rf"(?<!\d)(?P<d>\d{{1,2}})(?:st|nd|rd|th)?[\s\-/.,]*(?P<mon>{_MONTH_ALT})[a-z]*\.?{_TEXT_YEAR}",
    re.IGNORECASE,
)
_MONTH_DAY_RE = re.compile(
    rf"(?<![A-Za-z])(?P<mon>{_MONTH_ALT})[a-z]*\.?[\s\-/.,]*(?P<d>\d{{1,2}})(?:st|nd|rd|th)?{_TEXT_YEAR}",
    re.IGNORECASE,
)


def month_names() -> set[str]:
    """Every month name and abbreviation the date reader knows (upper case)."""
    return {name.upper() for name in _MONTHS}


MIN_YEAR = 1990
MAX_YEAR = 2049


@dataclass(frozen=True)
class DateMatch:
    """A date found in text: every valid reading, best first, and where it was."""

    readings: tuple[date, ...]
    start: int
    end: int
    numeric: bool = field(default=False)

    @property
    def date(self) -> date:
        return self.readings[0]

    @property
    def ambiguous(self) -> bool:
        return len(self.readings) > 1


def _year(text: str) -> int:
    year = int(text[:4]) if len(text) >= 4 else int(text)
    if year < 100:
        year += 2000 if year < 40 else 1900
    return year


def _make(year: int, month: int, day: int) -> date | None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month(name: str) -> int | None:
    name = name.lower().rstrip(".")
    for cut in (len(name), 4, 3):
        if name[:cut] in _MONTHS:
            return _MONTHS[name[:cut]]
    return None


def _numeric_readings(a: int, b: int, year: int, *, dayfirst: bool) -> tuple[date, ...]:
    day_first = _make(year, b, a)
    month_first = _make(year, a, b)
    ordered = (day_first, month_first) if dayfirst else (month_first, day_first)
    readings: list[date] = []
    for reading in ordered:
        if reading is not None and reading not in readings:
            readings.append(reading)
    return tuple(readings)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    """Whether `span` overlaps one of `taken`: disjoint spans sorted by start, so only the neighbours count."""
    at = bisect.bisect_left(taken, span)
    return any(span[0] < end and start < span[1] for start, end in taken[max(at - 1, 0) : at + 1])


def find_dates(text: str, *, dayfirst: bool = True) -> list[DateMatch]:
    """Every date in `text`, in order of position.

    Args:
        text: Any text, one line or many.
        dayfirst: For numeric dates where both readings are valid, put day-month-year first.
    """
    found: list[DateMatch] = []
    taken: list[tuple[int, int]] = []

    def add(readings: tuple[date, ...], match: re.Match[str], *, numeric: bool) -> None:
        if readings and not _overlaps(match.span(), taken):
            bisect.insort(taken, match.span())
            found.append(DateMatch(readings, match.start(), match.end(), numeric=numeric))

    for m in _ISO_RE.finditer(text):
        d = _make(int(m["y"]), int(m["m"]), int(m["d"]))
        add((d,) if d else (), m, numeric=True)
    for m in _NUMERIC_RE.finditer(text):
        second = int(m["b"] or m["b2"] or m["b3"])
        add(_numeric_readings(int(m["a"]), second, _year(m["y"]), dayfirst=dayfirst), m, numeric=True)
    for m in _DAY_MONTH_RE.finditer(text):
        month = _month(m["mon"])
        d = _make(_year(m["y"] or m["y2"]), month, int(m["d"])) if month else None
        add((d,) if d else (), m, numeric=False)
    for m in _MONTH_DAY_RE.finditer(text):
        month = _month(m["mon"])
        d = _make(_year(m["y"] or m["y2"]), month, int(m["d"])) if month else None
        add((d,) if d else (), m, numeric=False)
    if not found:
        for m in _GLUED_NUMERIC_RE.finditer(text):
            add(_numeric_readings(int(m["a"]), int(m["b"]), _year(m["y"]), dayfirst=dayfirst), m, numeric=True)
    if not found:
        for m in _COMPACT_RE.finditer(text):
            add(_compact_readings(m["digits"], dayfirst=dayfirst), m, numeric=True)
    found.sort(key=lambda match: match.start)
    return found


def _compact_readings(digits: str, *, dayfirst: bool) -> tuple[date, ...]:
    """The dates eight digits can be: DDMMYYYY (MMDDYYYY when not `dayfirst`) or YYYYMMDD, years 2000-2099."""
    first, second, year = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    readings: list[date] = []
    if 2000 <= year <= 2099:
        day, month = (first, second) if dayfirst else (second, first)
        made = _make(year, month, day)
        if made:
            readings.append(made)
    if digits.startswith("20"):
        made = _make(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        if made:
            readings.append(made)
    return tuple(readings)


def date_readings(text: str) -> set[date]:
    """Every date any reading of `text` could mean (used to compare against printed ground truth)."""
    return {reading for match in find_dates(text) for reading in match.readings}


_DATE_LABEL_RE = re.compile(r"\b(?:DATE|DATED|TARIKH|DATUM|FECHA|DATA|BIZDATE|TRANS\s*DATE)\b|^DATE", re.IGNORECASE)
_NOT_PURCHASE_RE = re.compile(
    r"\b(?:EXP|EXPIRY|EXPIRES|EXPDATE|VALID|BEST\s*BEFORE|USE\s*BY|DUE\s*DATE|BIRTH|DOB|GÜLTIG|GULTIG)",
    re.IGNORECASE,
)


def resolve_dayfirst(lines: list[str], *, default: bool) -> bool:
    """Day-first or month-first for this receipt: an unambiguous numeric date decides, else `default`."""
    for line in lines:
        for match in find_dates(line, dayfirst=True):
            if not match.numeric or match.ambiguous or len(match.readings) != 1:
                continue
            # A numeric date with one valid reading shows the convention: 19/10/2018 or 10/26/2018.
            parts = re.match(r"\D*(\d{1,4})\D+(\d{1,2})", line[match.start : match.end])
            if parts and len(parts.group(1)) <= 2 and parts.group(1) != parts.group(2):
                return int(parts.group(1)) > 12
    return default


def choose_date(lines: list[str], *, dayfirst: bool) -> date | None:
    """The purchase date: a date next to a DATE label first, else the first date printed; never an expiry."""
    best: tuple[int, int, date] | None = None
    for index, line in enumerate(lines):
        matches = find_dates(line, dayfirst=dayfirst)
        if not matches:
            continue
        score = 0
        # A label on the line above counts when that line is only a label ("DATE" / "12/02/2018").
        above = lines[index - 1] if index > 0 and not find_dates(lines[index - 1]) else ""
        if _DATE_LABEL_RE.search(line) or _DATE_LABEL_RE.search(above):
            score += 2
        if _NOT_PURCHASE_RE.search(above + " " + line):
            score -= 5
        for match in matches:
            candidate = (score, -index, match.date)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    return best[2] if best is not None else None
