"""Reading order for boxes of text: group into visual rows, then read each row left to right.

Engines report text boxes in their own order (detection order, or Tesseract's blocks, which put a
right-hand price column after the whole item column). A receipt is read by rows: item, quantity and
amount belong on one line. The rule matches the one used for the SROIE transcripts: sort boxes by
vertical centre; a box joins the current row when its vertical overlap with the row's mean extent is at
least half the smaller of the two heights.

Photographed receipts are tilted, and often more at the top than at the bottom (the camera looks down at
an angle): the price at the right-hand end of a row then sits higher or lower than its name, by as much as
a whole row. Two things put it back on its row:

* **The tilt.** When the engine gives each box's tilt (``OcrLine.angle``, from its polygon), each box's
  vertical centre is carried along the local row slope (the median tilt of the boxes within a few text
  heights of it, long thin boxes counting most: a short box's polygon sways with its glyphs) to a common
  vertical line, and its height is reduced to the text's own height. Boxes with no tilt (Tesseract, text
  layers) keep their positions.
* **The amount column.** Boxes that hold only an amount (or a tax code, a currency, a count beside one)
  are grouped into rows among themselves, and those rows are then paired with the rows of the other
  boxes in order, each at most once, at the least total distance (:func:`_align`). A price column that
  still drifts by half a row after the tilt is taken out is then read on the right rows, because one
  pair's choice constrains the next; a price with no row near it stays on a row of its own.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.rules.models import OcrLine

NEIGHBOURHOOD = 3.0
"""How far (in text heights) above and below a box the tilts that give its row's slope are taken from."""
MAX_TILT = 30.0
"""Tilts steeper than this (degrees) are not a row's: a word printed on end, a stamp."""
RELIABILITY_POWER = 2.0
"""A box's tilt counts by its length over its height to this power."""
MIN_HEIGHT_SHARE = 0.35
"""A tilted box's text height is never taken below this share of its box's height."""
LONE_COST = 2.0
"""What leaving an amount on a row of its own costs, against pairing it (its distance squared, in text heights)."""
MAX_DISTANCE = 0.9
"""The farthest (in text heights, once the tilt is taken out) an amount may be from the row it is paired with."""


def box_from_points(points: Iterable[Sequence[float]]) -> list[float]:
    """The axis-aligned box [x1, y1, x2, y2] around a polygon given as (x, y) points."""
    xs: list[float] = []
    ys: list[float] = []
    for point in points:
        xs.append(float(point[0]))
        ys.append(float(point[1]))
    return [round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)]


def angle_from_points(points: Sequence[Sequence[float]]) -> float | None:
    """The tilt in degrees of a text box given as four corners (top-left, top-right, bottom-right,
    bottom-left, as detectors return them): the mean direction of its top and bottom edges. Positive
    falls to the right (image y grows downwards). None for anything but four points or a box taller than
    wide (a vertical box's edges say nothing of its row's tilt).
    """
    if len(points) != 4:
        return None
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = ((float(p[0]), float(p[1])) for p in points)
    dx, dy = (x1 - x0) + (x2 - x3), (y1 - y0) + (y2 - y3)
    height = math.hypot(x3 - x0, y3 - y0)
    if dx <= 0 or math.hypot(dx, dy) / 2 < height:
        return None
    return round(math.degrees(math.atan2(dy, dx)), 2)


@dataclass(frozen=True)
class _Placed:
    """A boxed line with its position once the row slope is taken out."""

    line: OcrLine
    centre: float
    height: float
    x: float
    right: float


def _weighted_median(pairs: list[tuple[float, float]]) -> float:
    """The value at half the total weight of (value, weight) pairs."""
    pairs.sort()
    half = sum(weight for _, weight in pairs) / 2
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= half:
            return value
    return pairs[-1][0]


def _reliability(box: Sequence[float]) -> float:
    """How much a box's tilt says about its row: long, thin boxes say much, short ones (a price, where the
    strokes of a "$" sway the polygon) little."""
    width, height = box[2] - box[0], max(box[3] - box[1], 1.0)
    return math.pow(width / height, RELIABILITY_POWER)


def row_slopes(lines: Sequence[OcrLine]) -> list[float]:
    """For each boxed line, the slope (dy/dx) of the text row it sits on: the median tilt of the boxes within
    NEIGHBOURHOOD text heights above and below it, weighted by :func:`_reliability`; where none is near, the
    receipt's median tilt; 0 when no box has a tilt (tilts steeper than MAX_TILT are not rows' and are
    ignored)."""
    boxes = [line.box for line in lines if line.box is not None]
    tilted = sorted(
        ((b[1] + b[3]) / 2, math.tan(math.radians(line.angle)), _reliability(b))
        for line in lines
        if (b := line.box) is not None and line.angle is not None and abs(line.angle) <= MAX_TILT
    )
    if not tilted:
        return [0.0] * len(boxes)
    heights = sorted(b[3] - b[1] for b in boxes)
    reach = NEIGHBOURHOOD * heights[len(heights) // 4]
    centres = [y for y, _, _ in tilted]
    overall = _weighted_median([(slope, weight) for _, slope, weight in tilted])
    out: list[float] = []
    for box in boxes:
        centre = (box[1] + box[3]) / 2
        low, high = bisect.bisect_left(centres, centre - reach), bisect.bisect_right(centres, centre + reach)
        near = [(slope, weight) for _, slope, weight in tilted[low:high]]
        out.append(_weighted_median(near) if near else overall)
    return out


def _place(lines: Sequence[OcrLine]) -> list[_Placed]:
    slopes = row_slopes(lines)
    boxes = [line.box for line in lines if line.box is not None]
    reference = sum((b[0] + b[2]) / 2 for b in boxes) / len(boxes) if boxes else 0.0
    placed: list[_Placed] = []
    for line, slope in zip(lines, slopes, strict=True):
        assert line.box is not None
        x1, y1, x2, y2 = line.box
        height = y2 - y1
        own = math.tan(math.radians(line.angle)) if line.angle is not None and abs(line.angle) <= MAX_TILT else slope
        text_height = max(height - abs(own) * (x2 - x1), MIN_HEIGHT_SHARE * height)
        centre = (y1 + y2) / 2 - slope * ((x1 + x2) / 2 - reference)
        placed.append(_Placed(line, centre, text_height, x1, x2))
    return placed


def _sweep(placed: Sequence[_Placed], *, one_per_column: bool = False) -> list[list[_Placed]]:
    """Rows by vertical overlap: sorted by centre, a box joins the current row when it overlaps the row's
    mean extent by at least half the smaller height (and, with `one_per_column`, no box of the row above or
    below it: two amounts one above the other are two rows however close)."""
    rows: list[list[_Placed]] = []
    top = bottom = 0.0  # the current row's mean vertical extent
    for item in sorted(placed, key=lambda p: p.centre):
        y1, y2 = item.centre - item.height / 2, item.centre + item.height / 2
        if rows and not (one_per_column and any(item.x < p.right and p.x < item.right for p in rows[-1])):
            overlap = min(y2, bottom) - max(y1, top)
            if overlap >= 0.5 * min(y2 - y1, bottom - top):
                row = rows[-1]
                row.append(item)
                top += (y1 - top) / len(row)
                bottom += (y2 - bottom) / len(row)
                continue
        rows.append([item])
        top, bottom = y1, y2
    return rows


@dataclass
class _Row:
    """A row being built: its boxes, mean corrected centre and text height, and horizontal extent."""

    boxes: list[_Placed]

    @property
    def centre(self) -> float:
        return sum(p.centre for p in self.boxes) / len(self.boxes)

    @property
    def height(self) -> float:
        return sum(p.height for p in self.boxes) / len(self.boxes)

    def beside(self, other: _Row) -> bool:
        """Whether no box of one row stands over a box of the other: horizontally they overlap by less than
        half the narrower one (boxes of neighbouring words may touch: "1.006" over the next "60.00")."""
        return all(
            min(a.right, b.right) - max(a.x, b.x) < 0.5 * min(a.right - a.x, b.right - b.x)
            for a in self.boxes
            for b in other.boxes
        )


_CODE_RE = re.compile(r"^[^\w\s]?[A-Za-z]{1,2}[^\w\s]?$|^[^\w\s]$")


def _is_amount(text: str) -> bool:
    """An amount, or a code printed beside one: a tax code (``T``, ``SR``, ``*``), a currency (``RM``)."""
    # Imported here: the OCR package is imported by `orchestrator tools` and `validate`, which must not
    # load the receipt parser (tests/test_startup.py); rows are only built once an image has been read.
    from orchestrator.rules.receipt._summary import money_only

    return money_only(text) is not None or bool(_CODE_RE.match(text.strip()))


def _align(words: list[_Row], amounts: list[_Row]) -> list[_Row]:
    """Pair rows of amounts with rows of words, in order, each at most once: the pairing with the least
    cost, where a pair costs its squared vertical distance (in text heights) and an amount left alone
    LONE_COST. An amount is paired only beside its row (no horizontal overlap) and within MAX_DISTANCE
    text heights of it. Order is kept, so one pair's choice constrains the rest: a price column that
    drifts by half a row is not read one row off."""
    n, m = len(amounts), len(words)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 1: skip a word row, 2: amount alone, 3: pair
    cost[0] = [0.0] * (m + 1)
    for i in range(1, n + 1):
        cost[i][0] = cost[i - 1][0] + LONE_COST
        move[i][0] = 2
        amount = amounts[i - 1]
        for j in range(1, m + 1):
            best, how = cost[i][j - 1], 1
            if cost[i - 1][j] + LONE_COST < best:
                best, how = cost[i - 1][j] + LONE_COST, 2
            word = words[j - 1]
            distance = abs(amount.centre - word.centre) / max((amount.height + word.height) / 2, 1.0)
            if distance <= MAX_DISTANCE and cost[i - 1][j - 1] + distance**2 < best and amount.beside(word):
                best, how = cost[i - 1][j - 1] + distance**2, 3
            cost[i][j], move[i][j] = best, how
    rows = [_Row(list(word.boxes)) for word in words]
    alone: list[_Row] = []
    i, j = n, m
    while i > 0:
        how = move[i][j]
        if how == 1:
            j -= 1
        elif how == 2:
            alone.append(amounts[i - 1])
            i -= 1
        else:
            rows[j - 1].boxes.extend(amounts[i - 1].boxes)
            i, j = i - 1, j - 1
    return sorted(rows + alone, key=lambda row: row.centre)


def group_rows(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    """Group boxed lines into visual rows, top to bottom, each row sorted left to right.

    Boxes that hold only an amount are grouped among themselves and then paired with the rows of the
    other boxes (see :func:`_align`). Lines without a box keep their relative order and each form a row of
    their own at the end.
    """
    placed = _place([line for line in lines if line.box is not None])
    amounts = [p for p in placed if _is_amount(p.line.text)]
    words = [p for p in placed if not _is_amount(p.line.text)]
    rows = _align([_Row(row) for row in _sweep(words)], [_Row(row) for row in _sweep(amounts, one_per_column=True)])
    out = [[p.line for p in sorted(row.boxes, key=lambda p: p.x)] for row in rows]
    out.extend([line] for line in lines if line.box is None)
    return out


def merge_row(row: Sequence[OcrLine]) -> OcrLine:
    """One line for a visual row: texts joined by a space, the union box, the mean confidence and tilt."""
    if len(row) == 1:
        return row[0]
    boxes = [line.box for line in row if line.box is not None]
    box = (
        [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
        if boxes
        else None
    )
    confidences = [line.confidence for line in row if line.confidence is not None]
    confidence = sum(confidences) / len(confidences) if confidences else None
    angles = [line.angle for line in row if line.angle is not None]
    angle = round(sum(angles) / len(angles), 2) if angles else None
    return OcrLine(text=" ".join(line.text for line in row), box=box, confidence=confidence, angle=angle)


def reading_order(lines: Sequence[OcrLine], *, merge_rows: bool = True) -> list[OcrLine]:
    """Lines in reading order; with `merge_rows`, each visual row becomes a single line."""
    rows = group_rows(lines)
    if merge_rows:
        return [merge_row(row) for row in rows]
    return [line for row in rows for line in row]
