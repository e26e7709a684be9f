"""Put back the spaces RapidOCR's recogniser drops in Latin text (``BLUEHERONCAFE`` -> ``BLUE HERON CAFE``).

The PP-OCR models shipped with rapidocr are trained mostly on Chinese and often omit the space between
English words. The ink shows where the spaces are: within a detected line, a run of blank pixel columns
much wider than the usual gap between letters is a word break. RapidOCR's per-character boxes tell us
which two characters the break falls between.

Digits are never split (a ``1`` in a monospaced receipt font has wide blank margins, and ``160.00``
must stay one token). On the synthetic samples this lifts token F1 from 0.64 to 0.92; on 12 SROIE
receipts not used for tuning, from 0.69 to 0.72.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_NUMERIC = frozenset("0123456789.,")


def _blank_runs(blank: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate(([False], blank, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2], strict=True)]


def restore_spaces(
    gray: npt.NDArray[np.uint8],
    points: Sequence[Sequence[float]],
    text: str,
    char_boxes: Sequence[Sequence[Sequence[float]]],
    chars: Sequence[str],
    *,
    gap_ratio: float = 1.8,
    height_ratio: float = 0.2,
) -> str:
    """`text` with a space inserted wherever the line's ink has a word-sized gap between two characters.

    Args:
        gray: the whole page, grayscale, as an (height, width) array.
        points: the line's polygon on the page.
        text: the recognised text (it may already hold some spaces; they are kept).
        char_boxes: one polygon per non-space character, left to right (RapidOCR ``return_word_box``).
        chars: those characters, in the same order.
        gap_ratio: a word gap is at least this many times the median blank run in the line...
        height_ratio: ...and at least this fraction of the line's height.
    """
    if len(chars) < 2 or len(char_boxes) != len(chars) or "".join(chars) != text.replace(" ", ""):
        return text  # not the shape we understand (e.g. CJK characters, which RapidOCR orders differently)
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    x1, x2 = max(int(min(xs)), 0), min(int(max(xs)) + 1, gray.shape[1])
    y1, y2 = max(int(min(ys)), 0), min(int(max(ys)) + 1, gray.shape[0])
    crop = gray[y1:y2, x1:x2]
    if crop.size == 0:
        return text
    low, high = np.percentile(crop, 5), np.percentile(crop, 95)
    if high - low < 40:  # too little contrast to tell ink from paper
        return text
    blank = (crop < (low + high) / 2).sum(axis=0) == 0
    inked = np.flatnonzero(~blank)
    offset = x1 + int(inked[0])  # page x of the first inked column
    runs = [(s + offset, e + offset) for s, e in _blank_runs(blank[inked[0] : inked[-1] + 1])]
    if not runs:
        return text
    threshold = max(gap_ratio * float(np.median([e - s for s, e in runs])), height_ratio * (y2 - y1), 3.0)
    breaks = [(s + e) / 2 for s, e in runs if e - s >= threshold]
    if not breaks:
        return text
    centers = [(min(float(p[0]) for p in box) + max(float(p[0]) for p in box)) / 2 for box in char_boxes]
    out: list[str] = []
    source = iter(text)
    for i, char in enumerate(chars):
        for original in source:  # copy the recogniser's own spaces up to this character
            if original == char:
                break
            out.append(original)
        out.append(char)
        if i + 1 == len(chars) or (char in _NUMERIC and chars[i + 1] in _NUMERIC):
            continue
        if any(centers[i] < b < centers[i + 1] for b in breaks):
            out.append(" ")
    return " ".join("".join(out).split())  # a break next to one of the recogniser's spaces makes two
