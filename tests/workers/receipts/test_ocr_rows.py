"""Rows rebuilt from OCR boxes of photographed receipts: tilted, and tilted more at the top than below."""

from __future__ import annotations

import math
from importlib.util import find_spec
from pathlib import Path

import pytest

from orchestrator.rules.models import OcrLine
from orchestrator.workers.receipts.ocr_backends._layout import (
    angle_from_points,
    group_rows,
    merge_row,
    reading_order,
    row_slopes,
)

TEXT_HEIGHT = 20.0
ROW_PITCH = 30.0


def _tilted(text: str, x1: float, x2: float, y_left: float, slope: float, *, angle: bool = True) -> OcrLine:
    """The axis-aligned box of a text line TEXT_HEIGHT high starting at (x1, y_left), rising by `slope`."""
    y_right = y_left + slope * (x2 - x1)
    top, bottom = min(y_left, y_right), max(y_left, y_right) + TEXT_HEIGHT
    tilt = round(math.degrees(math.atan(slope)), 2) if angle else None
    return OcrLine(text=text, box=[x1, top, x2, bottom], confidence=0.9, angle=tilt)


def _receipt(slopes: list[float], *, angle: bool = True) -> list[OcrLine]:
    """Item rows: a wide name box on the left and a narrow price box at the right end of the same row."""
    lines: list[OcrLine] = []
    for row, slope in enumerate(slopes):
        y = 100 + row * ROW_PITCH
        name_end = 300.0
        lines.append(_tilted(f"Item {row}", 20, name_end, y, slope, angle=angle))
        # The price starts where the row has run on to x = 520, so it sits higher (or lower) by slope * 500.
        lines.append(_tilted(f"{row + 1}.00", 520, 580, y + slope * 500, slope, angle=angle))
    return lines


def _texts(rows: list[list[OcrLine]]) -> list[list[str]]:
    return [[line.text for line in row] for row in rows]


EXPECTED = [[f"Item {row}", f"{row + 1}.00"] for row in range(6)]


@pytest.mark.parametrize("slope", [-0.1, 0.1])
def test_a_tilted_receipt_pairs_each_name_with_the_price_at_the_end_of_its_row(slope: float):
    lines = _receipt([slope] * 6)
    assert _texts(group_rows(lines)) == EXPECTED
    # Without the tilts the same boxes pair names with a neighbour's price: the correction is what works.
    assert _texts(group_rows(_receipt([slope] * 6, angle=False))) != EXPECTED


def test_a_receipt_tilted_more_at_the_top_than_at_the_bottom_follows_the_local_slope():
    # The camera looks down at an angle: the rows flatten out towards the bottom of the photo.
    slopes = [-0.12, -0.11, -0.09, -0.07, -0.05, -0.03]
    assert _texts(group_rows(_receipt(slopes))) == EXPECTED


def test_a_price_box_without_a_tilt_of_its_own_takes_its_neighbours_slope():
    lines = _receipt([-0.1] * 6)
    prices = [line.model_copy(update={"angle": None}) if line.text.endswith(".00") else line for line in lines]
    slopes = row_slopes(prices)
    assert slopes == pytest.approx([-0.1] * len(prices), abs=1e-3)
    assert _texts(group_rows(prices)) == EXPECTED


def test_boxes_without_any_tilt_are_grouped_as_printed():
    lines = [
        OcrLine(text="Latte", box=[20, 100, 200, 122]),
        OcrLine(text="7.00", box=[500, 102, 560, 124]),
        OcrLine(text="TOTAL", box=[20, 150, 100, 172]),
    ]
    assert row_slopes(lines) == [0.0, 0.0, 0.0]
    assert [line.text for line in reading_order(lines)] == ["Latte 7.00", "TOTAL"]


def test_the_tilt_of_a_polygon_is_the_direction_of_its_long_edges():
    falling = [[0, 0], [100, 10], [98, 30], [-2, 20]]
    assert angle_from_points(falling) == pytest.approx(math.degrees(math.atan(0.1)), abs=0.01)
    rising = [[0, 10], [100, 0], [100, 20], [0, 30]]
    assert angle_from_points(rising) == pytest.approx(-math.degrees(math.atan(0.1)), abs=0.01)
    assert angle_from_points([[0, 0], [10, 0], [10, 40], [0, 40]]) is None  # taller than wide: no row tilt
    assert angle_from_points([[0, 0], [10, 0], [10, 4]]) is None


def test_a_merged_row_keeps_the_mean_tilt():
    row = [OcrLine(text="a", box=[0, 0, 10, 10], angle=-4.0), OcrLine(text="b", box=[20, 0, 30, 10], angle=-2.0)]
    merged = merge_row(row)
    assert (merged.text, merged.angle) == ("a b", -3.0)
    assert merge_row([OcrLine(text="a", box=[0, 0, 10, 10]), OcrLine(text="b", box=[20, 0, 30, 10])]).angle is None


# -- the amount column -------------------------------------------------------------------------------


def _flat(text: str, x1: float, x2: float, top: float) -> OcrLine:
    return OcrLine(text=text, box=[x1, top, x2, top + TEXT_HEIGHT], confidence=0.9)


def test_a_price_column_half_a_row_off_is_read_on_its_rows():
    # What is left after a tilt estimated a little wrong: each price sits 0.7 text heights above its name,
    # too far for the rows to overlap, and nearly as close to the row above.
    lines: list[OcrLine] = []
    for row in range(5):
        top = 100 + row * ROW_PITCH
        lines += [_flat(f"Item {row}", 20, 300, top), _flat(f"{row + 1}.00", 520, 580, top - 14)]
    assert _texts(group_rows(lines)) == [[f"Item {row}", f"{row + 1}.00"] for row in range(5)]


def test_an_amount_with_no_row_beside_it_stays_on_a_row_of_its_own():
    lines = [_flat("TOTAL", 20, 120, 100), _flat("29.16", 20, 100, 130), _flat("VISA", 20, 100, 190)]
    assert _texts(group_rows(lines)) == [["TOTAL"], ["29.16"], ["VISA"]]


def test_a_tax_code_beside_a_price_goes_with_the_price():
    # "T" printed right of the price belongs to the amount column; the price still pairs with its name.
    lines = [
        _flat("MILK GAL WHOLE", 20, 300, 100),
        _flat("2.89", 500, 560, 86),
        _flat("T", 566, 576, 86),
        _flat("BREAD", 20, 150, 130),
        _flat("3.99", 500, 560, 116),
        _flat("T", 566, 576, 116),
    ]
    assert _texts(group_rows(lines)) == [["MILK GAL WHOLE", "2.89", "T"], ["BREAD", "3.99", "T"]]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.skipif(find_spec("rapidocr_onnxruntime") is None, reason='needs "orchestrator[ocr]"')
async def test_rapidocr_reads_a_tilted_photo_row_by_row():
    from PIL import Image

    from orchestrator.workers.receipts.ocr_backends import RapidOcrBackend

    sample = Path(__file__).resolve().parents[3] / "examples" / "receipts" / "cafe.png"
    tilted = Image.open(sample).convert("RGB").rotate(6, expand=True, fillcolor="white")
    boxes = (await RapidOcrBackend(merge_rows=False).read_image(tilted, "tilted cafe.png")).lines
    assert all(line.angle is not None and -8 < line.angle < -4 for line in boxes if len(line.text) > 6)

    def row_of(lines: list[OcrLine], needle: str) -> str:
        return next(line.text for line in lines if line.text.startswith(needle)).replace(" ", "")

    rows = reading_order(boxes)
    assert [row_of(rows, name) for name in ("Latte", "Avocado", "Subtotal")] == [
        "Latte2x3.507.00",
        "AvocadoToast8.50",
        "Subtotal27.00",
    ]
    # The tilt is what puts each price on its row: without it every price lands a row too high.
    flat = reading_order([line.model_copy(update={"angle": None}) for line in boxes])
    assert "7.00" not in row_of(flat, "Latte")


def test_two_amounts_one_above_the_other_are_never_one_row():
    # Dense rows: the two prices overlap vertically more than half, but they stand in one column.
    lines = [
        OcrLine(text="Veg Med", box=[20, 100, 200, 112]),
        OcrLine(text="14.85", box=[500, 100, 560, 120]),  # price boxes drawn taller than the name boxes
        OcrLine(text="Diet Coke", box=[20, 113, 200, 125]),
        OcrLine(text="1.75", box=[500, 106, 560, 126]),
    ]
    assert _texts(group_rows(lines)) == [["Veg Med", "14.85"], ["Diet Coke", "1.75"]]


def test_a_steep_tilt_is_not_taken_for_a_row_slope():
    # A word printed on end (a stamp, a vertical margin note) says nothing about the rows' slope.
    lines = [*_receipt([0.0] * 3, angle=False), OcrLine(text="PAID", box=[300, 100, 400, 160], angle=80.0)]
    assert row_slopes(lines) == [0.0] * len(lines)
