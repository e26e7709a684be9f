"""Reading order for boxes of text: group into visual rows, then read each row left to right.

Engines report text boxes in their own order (detection order, or Tesseract's blocks, which put a
right-hand price column after the whole item column). A receipt is read by rows: item, quantity and
amount belong on one line. The rule matches the one used for the SROIE transcripts: sort boxes by
vertical centre; a box joins the current row when its vertical overlap with the row's mean extent is at
least half the smaller of the two heights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.rules.models import OcrLine


def box_from_points(points: Iterable[Sequence[float]]) -> list[float]:
    """The axis-aligned box [x1, y1, x2, y2] around a polygon given as (x, y) points."""
    xs: list[float] = []
    ys: list[float] = []
    for point in points:
        xs.append(float(point[0]))
        ys.append(float(point[1]))
    return [round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)]


def _row_of(line: OcrLine) -> tuple[float, float]:
    assert line.box is not None
    return line.box[1], line.box[3]


def group_rows(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    """Group boxed lines into visual rows, top to bottom, each row sorted left to right.

    Lines without a box keep their relative order and each form a row of their own at the end.
    """
    boxed = sorted((line for line in lines if line.box is not None), key=lambda ln: sum(_row_of(ln)) / 2)
    rows: list[list[OcrLine]] = []
    top = bottom = 0.0  # the current row's mean vertical extent
    for line in boxed:
        y1, y2 = _row_of(line)
        if rows:
            overlap = min(y2, bottom) - max(y1, top)
            if overlap >= 0.5 * min(y2 - y1, bottom - top):
                row = rows[-1]
                row.append(line)
                top += (y1 - top) / len(row)
                bottom += (y2 - bottom) / len(row)
                continue
        rows.append([line])
        top, bottom = y1, y2
    for row in rows:
        row.sort(key=lambda ln: ln.box[0] if ln.box else 0.0)
    rows.extend([line] for line in lines if line.box is None)
    return rows


def merge_row(row: Sequence[OcrLine]) -> OcrLine:
    """One line for a visual row: texts joined by a space, the union box, the mean confidence."""
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
    return OcrLine(text=" ".join(line.text for line in row), box=box, confidence=confidence)


def reading_order(lines: Sequence[OcrLine], *, merge_rows: bool = True) -> list[OcrLine]:
    """Lines in reading order; with `merge_rows`, each visual row becomes a single line."""
    rows = group_rows(lines)
    if merge_rows:
        return [merge_row(row) for row in rows]
    return [line for row in rows for line in row]
