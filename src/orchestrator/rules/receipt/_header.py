"""The seller block at the top of a receipt: merchant name and address.

Layout rules, not vendor lists: the address starts at the first line that looks like one (a street word,
a house or lot number, a postcode) and runs until a phone, fax, tax-registration or document-title line;
after the postcode only a line or two of town, state or country may follow. The merchant is the registered
company name when the header prints one (``... SDN BHD``, ``... PTE LTD``: what an expense record
wants), otherwise the name printed just above the address, otherwise the first line that is not a
document title, a registration number, a date or a greeting. With the lines' OCR boxes, a name set like
one (centred or large) is preferred to a first line set like body text (see :func:`read_header`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.rules.receipt._amounts import find_amounts
from orchestrator.rules.receipt._dates import find_dates
from orchestrator.rules.receipt._labels import classify

HEADER_LINES = 14
"""How many lines from the top may hold the merchant and its address."""

# Street words that mark an address on their own, and short ones that do only in a line with a number.
_STREET_WORDS = (
    "JALAN JLN LORONG TAMAN PERSIARAN LEBUH LEBUHRAYA SEKSYEN KAWASAN PERINDUSTRIAN MENARA WISMA KOMPLEKS "
    "BANGUNAN PLAZA FLOOR LEVEL BLOCK STREET ROAD AVENUE BOULEVARD BLVD DRIVE LANE HIGHWAY SUITE PARKWAY "
    "STRASSE RUE VIA VIALE PIAZZA CALLE AVENIDA"
).split()
_WEAK_STREET_WORDS = (
    "NO LOT UNIT FLR LVL BLK LRG TMN KG BATU BANDAR PUSAT ST RD AVE DR LN HWY STE PL SQ CT WAY PKWY STR SEK"
).split()
_STREET_RE = re.compile(rf"\b(?:{'|'.join(_STREET_WORDS)})\b")
_WEAK_STREET_RE = re.compile(rf"\b(?:{'|'.join(_WEAK_STREET_WORDS)})\b")
# In OCR output with the spaces squeezed out, only long street words are safe to find inside a token.
_SQUASHED_STREET_RE = re.compile(r"(?:STREET|ROAD|AVENUE|BLVD|BOULEVARD|HIGHWAY|HWY|JALAN|DRIVE|SUITE|PLAZA)$")
_HOUSE_NUMBER_RE = re.compile(r"^(?:NO\.?\s*)?[A-Z0-9-]*\d[A-Z0-9/-]*\s?,")
_HOUSE_NUMBERS_RE = re.compile(r"^\s*(?:NO|LOT|UNIT)\b\.?\s*\d+,\s?\d+\s*(?:&|,)")
_SQUASHED_HOUSE_RE = re.compile(r"^\d{3,5}(?:-\d{1,5})?[A-Z]{2}")
_POSTCODE_RE = re.compile(
    # A 5-digit postcode (not a lot or unit number), a UK postcode, a Canadian one.
    r"(?<![\d-])(?<!LOT )(?<!LOT)(?<!NO )(?<!NO\. )(?<!NO\.)(?<!UNIT )(?<!#)\d{5}(?![\d-])"
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b|\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b"
)
_STOP_RE = re.compile(
    r"\b(?:TEL|TELEPHONE|PHONE|PH|FAX|H/P|HP|MOBILE|EMAIL|E-MAIL|GST|SST|VAT|REG|ROC|INVOICE|RECEIPT|"
    r"CASHIER|DATE|TIME|TABLE|SERVER|ORDER|BILL|WWW|HTTP|OPEN|HOURS|WELCOME|THANK)\b|\S@\S|WWW\.|\.COM",
)
_REG_NUMBER_RE = re.compile(
    r"^\(?\s*(?:CO(?:MPANY)?\.?\s*(?:REG\.?)?\s*(?:NO)?\.?|ROC|REG\.?\s*NO\.?|CO-REG|BUSINESS\s*REG)?\s*[:.(]?\s*"
    r"[A-Z]{0,3}\d{4,}[\s-]*[A-Z]?\s*\)?$"
)
_TITLE_RE = re.compile(
    r"\b(?:RECEIPT|INVOICE|CASH\s*SALES?|CASH\s*BILL|COPY|DUPLICATE|APPROVED|ORIGINAL|REPRINT|WELCOME|THANK|"
    r"OFFICIAL|CUSTOMER|GUEST\s*CHECK|ORDER|DINE\s*IN|TAKE\s*(?:AWAY|OUT))|STORE\s*(?:NUMBER|NO\.?|#)?\s*\d",
)
_LABEL_VALUE_RE = re.compile(r"^[A-Z .#]{2,20}:\s*\S")
_LEGAL_SUFFIX_RE = re.compile(
    r"\b(?:SDN\.?\s*BHD|BHD|S/B|PTE\.?\s*LTD|ENTERPRISE|TRADING|INC|LLC|LTD|CORP)\b\.?|SDN\.?BHD|\bSB$",
)
_STRONG_SUFFIX_RE = re.compile(r"\b(?:SDN\.?\s*BHD|BHD|S/B|PTE\.?\s*LTD)\b\.?|SDN\.?BHD")
"""The registered company forms: a name ends with one of these when it has one."""
# Words that are a business's kind, not its name: "RESTAURANT SDN BHD" continues the line above.
_GENERIC_WORDS = frozenset(
    "RESTAURANT STATIONERY STATIONERS TRADING ENTERPRISE ENTERPRISES HARDWARE MARKETING HOLDINGS INDUSTRIES "
    "RETAIL SERVICE SERVICES SUPPLY SUPPLIES MOTOR MOTORS TRADERS AGENCY MART STORE STORES (M) M".split()
)
_TRAILING_REG_RE = re.compile(r"\s*[\(\[][^()\[\]]*\d{4,}[^()\[\]]*[\)\]]?[\s,.]*$")


def header_words() -> set[str]:
    """The words these rules look for: street words, business kinds, stop and title words (upper case)."""
    words = set(_STREET_WORDS) | set(_WEAK_STREET_WORDS) | set(_GENERIC_WORDS)
    words |= set(re.findall(r"[A-Z]{3,}", _STOP_RE.pattern + _TITLE_RE.pattern))
    return words


def _upper(line: str) -> str:
    return line.upper()


def is_address_start(line: str) -> bool:
    """Whether a line can open an address: a street word, a house or lot number, or a postcode."""
    upper = _upper(line)
    if line.lstrip().startswith("(") or _is_stop(line) or _LEGAL_SUFFIX_RE.search(upper):
        return False
    if _has_money(line) and not _HOUSE_NUMBERS_RE.match(upper):
        return False  # an amount is no address; house numbers listed with commas are ("NO 24,25 & 26,")
    if not any(ch.isdigit() for ch in upper):
        return False  # an address opens with a number (house, lot, unit) or carries a postcode
    if _STREET_RE.search(upper) or _WEAK_STREET_RE.search(upper):
        return True
    if _POSTCODE_RE.search(upper) or _HOUSE_NUMBER_RE.match(upper):
        return True
    if " " in line.strip():
        return False
    # Text with the spaces squeezed out: "3440WASHINGTONST", "65-67HarborneRoad".
    return bool(_SQUASHED_HOUSE_RE.match(upper) or _SQUASHED_STREET_RE.search(re.sub(r"[^A-Z]", "", upper)))


def _has_money(line: str) -> bool:
    return any(amount.is_money for amount in find_amounts(line))


def _digits(line: str) -> int:
    return sum(ch.isdigit() for ch in line)


def _is_phone_only(upper: str) -> bool:
    return bool(re.fullmatch(r"[\s()+\d-]{9,}", upper))


def _is_stop(line: str) -> bool:
    upper = _upper(line)
    return bool(
        _STOP_RE.search(upper)
        or _TITLE_RE.search(upper)
        or _REG_NUMBER_RE.match(upper)
        or _is_phone_only(upper)
        or classify(line) is not None
    )


def _is_name_candidate(line: str) -> bool:
    upper = _upper(line)
    letters = re.sub(r"[^A-Z]", "", upper)
    if len(letters) < 2 or len(re.sub(r"[^A-Z0-9]", "", upper)) < 3:
        return False
    if find_dates(line) or re.search(r"\d{1,2}:\d{2}", line):
        return False
    if _TITLE_RE.search(upper) or _REG_NUMBER_RE.match(upper) or _STOP_RE.search(upper):
        return False
    if line.rstrip().endswith(":") or line.lstrip().startswith("(") or _LABEL_VALUE_RE.match(upper):
        return False
    if _has_money(line):
        return False
    if classify(line) is not None:
        return False
    digits = sum(ch.isdigit() for ch in line)
    return digits <= len(letters)


def find_address(lines: list[str], start: int) -> tuple[int | None, int | None]:
    """(first, last) line index of the address block after `start`, or (None, None)."""
    first = None
    for index in range(start, min(len(lines), start + 6)):
        if is_address_start(lines[index]):
            first = index
            break
    if first is None:
        return None, None
    last = first
    after_postcode = 1 if _POSTCODE_RE.search(_upper(lines[first])) else 0
    for index in range(first + 1, min(len(lines), first + 7)):
        line = lines[index]
        upper = _upper(line)
        signals = _POSTCODE_RE.search(upper) or _STREET_RE.search(upper) or _WEAK_STREET_RE.search(upper)
        if lines[index - 1].rstrip().endswith(".") and not after_postcode and not signals:
            break  # "NO7, JLN UERO, SHAH ALAM." ends the address even without a postcode
        bare_postcode = bool(re.fullmatch(r"\d{5}", line.strip()))
        if not bare_postcode and (_is_stop(line) or find_dates(line) or _has_money(line)):
            break
        if line.lstrip().startswith("(") and (after_postcode or _digits(line) > 3):
            break
        if after_postcode:
            if after_postcode > 2 or re.search(r"\d", upper):
                break
            after_postcode += 1
        elif _POSTCODE_RE.search(upper):
            after_postcode = 1
        last = index
    return first, last


def _clean_name(name: str) -> str:
    name = _TRAILING_REG_RE.sub("", name).strip(" *#-=,:")
    return re.sub(r"^\d{4,}\s+(?=\D)", "", name)  # a till or branch number printed before the name


def _legal_name(lines: list[str], end: int) -> str | None:
    for index in range(min(end, len(lines))):
        line = lines[index]
        match = _LEGAL_SUFFIX_RE.search(_upper(line))
        if not match or _TITLE_RE.search(_upper(line)) or re.search(r"\bBY\b", _upper(line)):
            continue
        name = line
        head = line[: match.start()].strip()
        words = _upper(head).split()
        # "S TA T I ONERY SDN BHD": OCR may break a word into pieces.
        generic = all(word in _GENERIC_WORDS for word in words) or "".join(words) in _GENERIC_WORDS
        joins_above = generic or head.startswith("(") or line.count("(") > line.count(")")
        if joins_above and index > 0 and _is_name_candidate(lines[index - 1]):
            name = lines[index - 1] + " " + line
        if index > 0 and lines[index - 1].count("(") > lines[index - 1].count(")"):
            name = lines[index - 1] + " " + name
            if index > 1 and _is_name_candidate(lines[index - 2]):
                name = lines[index - 2] + " " + name
        elif name.count("(") > name.count(")") and index + 1 < len(lines) and ")" in lines[index + 1]:
            name = name + " " + lines[index + 1]
        elif not _STRONG_SUFFIX_RE.search(_upper(line)) and index + 1 < end and _continues_name(lines[index + 1]):
            # "... HARDWARE ENTERPRISE (SETIA" / "ALAM) SDN BHD": the registered form ends the name.
            name = name + " " + lines[index + 1]
        return _clean_name(name)
    return None


def _continues_name(line: str) -> bool:
    """A line that carries on a company name: short, ending with a registered form, not an address or title."""
    upper = _upper(line)
    match = _STRONG_SUFFIX_RE.search(upper)
    if match is None or _TITLE_RE.search(upper) or is_address_start(line):
        return False
    return len(upper[: match.start()].split()) <= 3


@dataclass(frozen=True)
class Header:
    """The seller block: merchant, address, and the index of the header's last line (None if not found)."""

    merchant: str | None
    address: str | None
    last: int | None


Box = Sequence[float]
"""An axis-aligned box [x1, y1, x2, y2] in pixels."""

CENTRED_WITHIN = 0.12
"""A line is centred when its centre lies within this share of the text's width from the text's centre."""
NEAR_CANDIDATES = 3
"""A name set like one is looked for among this many first name-like lines."""
TALL_FROM = 1.3
"""A line is printed large when it is at least this many times the receipt's median line height."""


@dataclass(frozen=True)
class Shape:
    """Where a line sits and how large it is printed, from its OCR box."""

    offset: float
    """Distance of the line's centre from the text's centre, as a share of the text's width."""
    height: float
    """The line's height against the receipt's median line height (1.0: body-text size)."""

    @property
    def prominent(self) -> bool:
        """Centred or printed large: how a seller's name is set."""
        return self.offset <= CENTRED_WITHIN or self.height >= TALL_FROM


def line_shapes(boxes: Sequence[Box | None]) -> list[Shape | None]:
    """Each line's :class:`Shape` from its box (None where a line has no usable box).

    The text's centre and width are robust to stray marks at the edges: the median of the line centres,
    and the spread between the 10th and 90th percentiles of the left and right edges.
    """
    usable = [b if b is not None and len(b) == 4 and b[2] > b[0] and b[3] > b[1] else None for b in boxes]
    known = [b for b in usable if b is not None]
    if not known:
        return [None] * len(boxes)
    heights = sorted(b[3] - b[1] for b in known)
    centres = sorted((b[0] + b[2]) / 2 for b in known)
    lefts = sorted(b[0] for b in known)
    rights = sorted(b[2] for b in known)
    median_height = heights[len(heights) // 2]
    centre = centres[len(centres) // 2]
    width = max(rights[(len(rights) * 9 - 1) // 10] - lefts[len(lefts) // 10], 1.0)
    return [
        Shape(offset=abs((b[0] + b[2]) / 2 - centre) / width, height=(b[3] - b[1]) / median_height)
        if b is not None
        else None
        for b in usable
    ]


def block_end(lines: Sequence[str]) -> int:
    """Where the seller block ends: the first line with an amount or a summary keyword (an item or total row)."""
    for index, line in enumerate(lines):
        if _has_money(line) or classify(line) is not None:
            return index
    return len(lines)


MAX_ROW = 120
"""Rows longer than this (characters) are not searched for a name at their start."""
MAX_SEAMS = 3
"""How many numbers in a row may start the address that follows a name."""
_ROW_SEAM_RE = re.compile(
    r"(?:\s|(?<=\d))(?=(?:TEL|TELEPHONE|PHONE|PH|FAX|HP|H/P|MOBILE|GST|VAT|ROC|REG|DATE|TIME|CASHIER)\b"
    r"|\(?\+?\d[\d ()-]{7,}$|\d{1,2}:\d{2}|\d{1,2}/\d{1,2}/\d{2,4})",
    re.IGNORECASE,
)


def name_prefix(line: str) -> str | None:
    """The name at the start of a row that also holds an address, a phone, a date or a time (OCR read the
    boxes side by side as one row: ``MCDONALDS TEL# (661)797-2111``, ``SHOPPINGSTORE 03:22PM 618``,
    ``Transmetropol itan 145EClaytonSt``), or None when the row does not start with a name."""
    if len(line) > MAX_ROW:
        return None  # no seller's row is this long; and each seam below is tried once (linear work)
    # An address after a name; not inside a line that opens an address itself ("SETAPAK, 53000 KUALA LUMPUR").
    numbers = itertools.islice(re.finditer(r"\s(?=\d)", line), MAX_SEAMS)
    seams = [] if is_address_start(line) else [m.start() for m in numbers if is_address_start(line[m.end() :])]
    seam = _ROW_SEAM_RE.search(line)
    if seam is not None:
        seams.append(seam.start())
    for cut in sorted(seams):
        head = line[:cut].strip(" ,;:-")
        if head and _is_name_candidate(head) and not is_address_start(head):
            return head
    return None


def read_header(lines: list[str], boxes: Sequence[Box | None] | None = None) -> Header:
    """The merchant name and the seller address (lines joined with spaces) from the top of a receipt.

    A row where OCR put the name beside a phone, date, time or address gives its start (:func:`name_prefix`).
    With `boxes` (each line's OCR box, aligned with `lines`): when the first name-like line is set like
    body text (:class:`Shape`: off-centre, body height) and is no registered company, and one of the next
    two name-like lines before the first amount is centred or printed large, that one is the name
    (``Stoe 1`` at the margin above a centred ``Bucky's Butchery``). Without boxes, the text alone decides.
    """
    top = lines[:HEADER_LINES]
    names: dict[int, str] = {}
    for i, line in enumerate(top):
        prefix = name_prefix(line)
        if prefix is not None:
            names[i] = prefix
        elif _is_name_candidate(line) and not is_address_start(line):
            names[i] = line
    candidates = sorted(names)
    if boxes is not None and candidates:
        shapes = line_shapes(boxes)
        end = block_end(top)

        def set_plainly(i: int) -> bool:
            # Known to be set like body text; a row's name prefix is not (its box is the whole row's).
            shape = shapes[i] if i < len(shapes) else None
            return names[i] == top[i] and shape is not None and not shape.prominent

        def prominent(i: int) -> bool:
            shape = shapes[i] if i < len(shapes) else None
            return names[i] == top[i] and shape is not None and shape.prominent

        first = candidates[0]
        if set_plainly(first) and not _LEGAL_SUFFIX_RE.search(_upper(top[first])):
            chosen = next((i for i in candidates[1:NEAR_CANDIDATES] if i < end and prominent(i)), first)
            candidates = [i for i in candidates if i >= chosen]
    first_name = candidates[0] if candidates else None
    search_from = first_name + 1 if first_name is not None else 0
    addr_first, addr_last = find_address(lines, search_from)
    merchant: str | None = None
    merchant_index = first_name
    if addr_first is not None:
        merchant = _legal_name(lines, addr_first)
    if merchant is None and merchant_index is not None:
        merchant = _clean_name(names[merchant_index])
    address = None
    if addr_first is not None and addr_last is not None:
        address = " ".join(line.strip() for line in lines[addr_first : addr_last + 1])
    last = addr_last if addr_last is not None else merchant_index
    return Header(merchant=merchant or None, address=address, last=last)
