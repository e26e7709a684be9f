"""A small trained model that says what each receipt line is: company, address, date, total or other.

Each line gets layout and text features (its index and relative position, length, digit/letter/upper-case
shares, company-suffix and address tokens, money and dates, the keyword rules' own label and the rules'
header guess) and, when its OCR box is known, box features (:data:`BOX_FEATURES`: print size, centring,
width, vertical position; zeros without a box). Gradient-boosted trees (trained with scikit-learn by
``python -m orchestrator.evaluation.train_layout``) turn them into class probabilities. The trees are shipped
as JSON (``orchestrator/rules/data/receipt_layout.json``: split feature, threshold, children, leaf value), not
a pickle, so loading the file runs no code and needs no scikit-learn: prediction here is plain Python.

The parser asks it for the header fields the keyword rules did not find (merchant, address); where the
rules found one, theirs stands: measured on vendor-held-out folds, letting the model replace or re-bound
the rules' header lowered accuracy (see ``receipt_layout.md``). Without the file the rules answer alone.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from importlib import resources

from pydantic import BaseModel, Field, ValidationError

from orchestrator.rules.receipt._amounts import find_amounts
from orchestrator.rules.receipt._dates import find_dates
from orchestrator.rules.receipt._header import HEADER_LINES, Header, is_address_start
from orchestrator.rules.receipt._labels import Label, classify

__all__ = [
    "BOX_FEATURES",
    "CLASSES",
    "FEATURE_NAMES",
    "Box",
    "LayoutModel",
    "box_features",
    "agreement",
    "header_from_model",
    "line_features",
    "shipped_layout_model",
]

CLASSES = ("other", "company", "address", "date", "total")
"""What a line can be, in the order of the model's outputs."""

_LEGAL_RE = re.compile(
    r"\b(?:SDN\.?\s*BHD|BHD|S/B|PTE\.?\s*LTD|LTD|INC|LLC|CORP|CO\.|ENTERPRISES?|TRADING|HOLDINGS|MART|"
    r"RESTAURANT|CAFE|STORE|SHOP|HARDWARE|STATIONERY|BAKERY|KEDAI|PASAR|MARKET)\b|SDN\.?BHD",
    re.I,
)
_STREET_RE = re.compile(
    r"\b(?:JALAN|JLN|LORONG|TAMAN|TMN|PERSIARAN|SEKSYEN|STREET|ST|ROAD|RD|AVE|AVENUE|BLVD|DRIVE|LANE|HWY|SUITE|"
    r"WAY|PLAZA|NO|LOT|BLOK|BLOCK|UNIT|KAMPUNG|KG|BANDAR|BATU|FLOOR|LEVEL)\b",
    re.I,
)
_STATE_RE = re.compile(
    r"\b(?:SELANGOR|JOHOR|KUALA\s*LUMPUR|PUCHONG|PETALING|SHAH\s*ALAM|KLANG|MALAYSIA|KEDAH|PERAK|PAHANG|MELAKA|"
    r"PENANG|SABAH|SARAWAK|NEGERI|SEMBILAN|CA|NY|TX|USA|INDIA)\b",
    re.I,
)
_POSTCODE_RE = re.compile(r"(?<!\d)\d{5,6}(?!\d)")
_PHONE_RE = re.compile(r"\b(?:TEL|PHONE|FAX|H/P|HP|MOBILE)\b|\d{2,4}-\d{6,8}", re.I)
_REG_RE = re.compile(r"\b(?:GST|SST|REG|ROC|CO\.?\s*NO|COMPANY\s*NO|TAX\s*ID|VAT)\b", re.I)
_TOTAL_WORD_RE = re.compile(r"\b(?:TOTAL|AMOUNT|NETT?|DUE|BALANCE|GRAND)\b", re.I)
_DATE_WORD_RE = re.compile(r"\bDATE\b", re.I)
_RULE_LABELS = (Label.TOTAL_FINAL, Label.TOTAL, Label.SUBTOTAL, Label.TAX, Label.TENDERED, Label.CHANGE)

BOX_FEATURES = (
    "has_box",
    "height_ratio",
    "height_rank",
    "centre_offset",
    "width_share",
    "top_share",
    "height_vs_prev",
    "height_vs_next",
)
"""Features from the line's OCR box (all 0 when the text came without boxes)."""

FEATURE_NAMES = (
    "index",
    "relative_index",
    "from_end",
    "length",
    "words",
    "digit_share",
    "letter_share",
    "upper_share",
    "legal_suffix",
    "street_word",
    "state_word",
    "postcode",
    "phone",
    "registration",
    "money",
    "date",
    "total_word",
    "date_word",
    "colon",
    "address_start",
    *(f"rule_{label.value}" for label in _RULE_LABELS),
    "rules_merchant",
    "rules_address",
    "prev_address_start",
    "next_address_start",
    "prev_legal_suffix",
    "next_legal_suffix",
    "prev_street_word",
    "next_street_word",
    "max_amount_rank",
    *BOX_FEATURES,
)
"""The features of one line, in the order the model file uses."""


def _own(line: str, header: Header, amounts_rank: float, index: int, count: int) -> list[float]:
    text = line.strip()
    chars = max(len(text), 1)
    letters = sum(ch.isalpha() for ch in text)
    label = classify(text)
    return [
        float(index),
        index / max(count - 1, 1),
        float(count - 1 - index),
        float(len(text)),
        float(len(text.split())),
        sum(ch.isdigit() for ch in text) / chars,
        letters / chars,
        sum(ch.isupper() for ch in text) / max(letters, 1),
        float(bool(_LEGAL_RE.search(text))),
        float(bool(_STREET_RE.search(text))),
        float(bool(_STATE_RE.search(text))),
        float(bool(_POSTCODE_RE.search(text))),
        float(bool(_PHONE_RE.search(text))),
        float(bool(_REG_RE.search(text))),
        float(any(amount.is_money for amount in find_amounts(text))),
        float(bool(find_dates(text))),
        float(bool(_TOTAL_WORD_RE.search(text))),
        float(bool(_DATE_WORD_RE.search(text))),
        float(":" in text),
        float(is_address_start(text)),
        *(float(label == rule) for rule in _RULE_LABELS),
        float(bool(header.merchant) and text in (header.merchant or "")),
        float(bool(header.address) and text in (header.address or "")),
        amounts_rank,
    ]


Box = Sequence[float]
"""An axis-aligned box [x1, y1, x2, y2] in pixels."""


def box_features(boxes: Sequence[Box | None] | None, count: int) -> list[list[float]]:
    """Per line, :data:`BOX_FEATURES` from its box: its height against the receipt's median line height
    (font size), its height's rank among the header lines (1 = tallest), how far its centre is from the
    page's centre and how wide it is (both as shares of the text's width), where its top is (share of the
    text's height), and its height against the lines above and below. Zeros for a line without a box."""
    zero = [0.0] * len(BOX_FEATURES)
    if boxes is None:
        return [list(zero) for _ in range(count)]
    if len(boxes) != count:
        raise ValueError(f"{len(boxes)} boxes for {count} lines: boxes must align with the lines")
    known = [b for b in boxes if b is not None and len(b) == 4 and b[3] > b[1] and b[2] > b[0]]
    if not known:
        return [list(zero) for _ in range(count)]
    heights = sorted(b[3] - b[1] for b in known)
    median = heights[len(heights) // 2]
    left, right = min(b[0] for b in known), max(b[2] for b in known)
    top, bottom = min(b[1] for b in known), max(b[3] for b in known)
    width, tall = max(right - left, 1.0), max(bottom - top, 1.0)
    usable = [b if b is not None and b in known else None for b in boxes]
    header_heights = sorted((b[3] - b[1] for b in usable[:HEADER_LINES] if b is not None), reverse=True)

    def height(index: int) -> float | None:
        if 0 <= index < count and (b := usable[index]) is not None:
            return b[3] - b[1]
        return None

    rows: list[list[float]] = []
    for i, b in enumerate(usable):
        if b is None:
            rows.append(list(zero))
            continue
        h = b[3] - b[1]
        prev, after = height(i - 1), height(i + 1)
        rows.append(
            [
                1.0,
                h / median,
                float(header_heights.index(h) + 1) if i < HEADER_LINES else 0.0,
                abs((b[0] + b[2]) / 2 - (left + right) / 2) / width,
                (b[2] - b[0]) / width,
                (b[1] - top) / tall,
                h / prev if prev else 0.0,
                h / after if after else 0.0,
            ]
        )
    return rows


def line_features(
    lines: Sequence[str], header: Header, boxes: Sequence[Box | None] | None = None, limit: int | None = None
) -> list[list[float]]:
    """One feature row per line (see :data:`FEATURE_NAMES`), or for the first `limit` lines only: their
    features are still those of the whole receipt (position from both ends, amount ranks). `header` is the
    keyword rules' header guess, `boxes` each line's OCR box when known (aligned with `lines`).

    Raises:
        ValueError: `boxes` is not aligned with `lines`.
    """
    count = len(lines)
    wanted = count if limit is None else min(limit, count)
    geometry = box_features(boxes, count)
    maxima = [max((a.value for a in find_amounts(line) if a.is_money), default=0.0) for line in lines]
    ranked = sorted({m for m in maxima if m > 0}, reverse=True)
    own = [  # one line more than wanted: its neighbour's tokens are a feature of the last wanted line
        _own(line, header, (ranked.index(maxima[i]) + 1.0) if maxima[i] > 0 else 0.0, i, count)
        for i, line in enumerate(lines[: wanted + 1])
    ]
    start = FEATURE_NAMES.index("address_start")
    legal = FEATURE_NAMES.index("legal_suffix")
    street = FEATURE_NAMES.index("street_word")
    rows: list[list[float]] = []
    for i, row in enumerate(own[:wanted]):
        before = own[i - 1] if i > 0 else None
        after = own[i + 1] if i + 1 < count else None
        neighbours = [
            before[start] if before else 0.0,
            after[start] if after else 0.0,
            before[legal] if before else 0.0,
            after[legal] if after else 0.0,
            before[street] if before else 0.0,
            after[street] if after else 0.0,
        ]
        rows.append(row[:-1] + neighbours + row[-1:] + geometry[i])
    return rows


class Tree(BaseModel):
    """One regression tree: parallel arrays as scikit-learn keeps them (a leaf has ``left == -1``)."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]

    def predict(self, row: Sequence[float]) -> float:
        node = 0
        for _ in range(len(self.feature)):  # bounded: a malformed file cannot loop forever
            if self.left[node] < 0:
                return self.value[node]
            node = self.left[node] if row[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


class LayoutModel(BaseModel):
    """Gradient-boosted trees per class: score = learning_rate * sum of the class's trees; softmax."""

    features: list[str]
    classes: list[str]
    learning_rate: float = Field(gt=0)
    stages: list[list[Tree]] = Field(description="per boosting stage, one tree per class")
    trained_on: str = ""

    def predict_proba(self, row: Sequence[float]) -> list[float]:
        """Class probabilities (in :attr:`classes` order) for one feature row."""
        scores = [0.0] * len(self.classes)
        for stage in self.stages:
            for k, tree in enumerate(stage):
                scores[k] += self.learning_rate * tree.predict(row)
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        total = sum(exp)
        return [e / total for e in exp]

    def classify(
        self, lines: Sequence[str], header: Header, boxes: Sequence[Box | None] | None = None, limit: int | None = None
    ) -> list[dict[str, float]]:
        """Per line (the first `limit` only, if given), each class's probability; `boxes`: each line's OCR box,
        when known. Features are always of the whole receipt, as in training (a line's position counts from
        both ends)."""
        rows = line_features(lines, header, boxes, limit)
        return [dict(zip(self.classes, self.predict_proba(row), strict=True)) for row in rows]


_MODEL_FILE = "receipt_layout.json"


@functools.cache
def shipped_layout_model() -> LayoutModel | None:
    """The model shipped with the package, or None when the file is missing or does not fit this code."""
    try:
        raw = resources.files("orchestrator.rules").joinpath("data", _MODEL_FILE).read_text(encoding="utf-8")
        model = LayoutModel.model_validate(json.loads(raw))
    except (OSError, ValueError, ValidationError):
        return None
    return model if tuple(model.features) == FEATURE_NAMES and tuple(model.classes) == CLASSES else None


COMPANY_AT = 0.5
ADDRESS_AT = 0.3
"""A line joins the company (address) block when the model gives it at least this probability."""


def _run(probabilities: list[dict[str, float]], name: str, at: float, start: int, limit: int) -> tuple[int, int] | None:
    """The first run of consecutive lines from `start` (below `limit`) with `name`'s probability >= `at`."""
    first = None
    for i in range(start, limit):
        if probabilities[i][name] >= at:
            if first is None:
                first = i
        elif first is not None:
            return first, i - 1
    return (first, limit - 1) if first is not None else None


def header_from_model(
    lines: Sequence[str], model: LayoutModel, rules: Header, boxes: Sequence[Box | None] | None = None
) -> tuple[Header, list[str], list[dict[str, float]]]:
    """The header as the model reads it, falling back to the rules' merchant/address where it finds none.

    `boxes` are the lines' OCR boxes when known (aligned with `lines`). Returns the header, what each
    field's answer came from (``"model"`` or ``"rules"``, per field) and the model's class probabilities of
    each header line (the first :data:`HEADER_LINES`; the confidence reads the model's agreement with the
    header from them, see :func:`agreement`).
    """
    limit = min(len(lines), HEADER_LINES)
    probabilities = model.classify(lines, rules, boxes, limit)
    used = ["rules", "rules"]
    merchant, address = rules.merchant, rules.address
    company = _run(probabilities, "company", COMPANY_AT, 0, limit)
    if merchant is None and company is not None:
        merchant = " ".join(line.strip() for line in lines[company[0] : company[1] + 1])
        used[0] = "model"
    if address is None:
        found = _run(probabilities, "address", ADDRESS_AT, company[1] + 1 if company else 0, limit)
        if found is not None:
            address = " ".join(line.strip() for line in lines[found[0] : found[1] + 1])
            used[1] = "model"
    # Where the items start stays the rules' call: the model only fills in what the rules did not find.
    return Header(merchant=merchant or None, address=address or None, last=rules.last), used, probabilities


def agreement(lines: Sequence[str], probabilities: Sequence[dict[str, float]], name: str | None, label: str) -> float:
    """How much the model agrees that `name` (a header field read from `lines`) is a `label` ("company",
    "address"): the mean of that class's probability over the header lines `name` was read from (lines of
    which it is made, within the lines `probabilities` covers); 0 when none is (a name the model cannot see).
    """
    if not name:
        return 0.0
    mine = [p[label] for line, p in zip(lines, probabilities, strict=False) if line.strip() and line.strip() in name]
    return sum(mine) / len(mine) if mine else 0.0
