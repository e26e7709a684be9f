"""The seller block read with the OCR boxes: position and size, merged rows, and the plumbing that brings boxes in."""

from __future__ import annotations

import pytest

from orchestrator.errors import ToolError
from orchestrator.rules.models import OcrLine
from orchestrator.rules.receipt._header import Shape, line_shapes, name_prefix, read_header
from orchestrator.rules.receipt.layout_model import BOX_FEATURES, FEATURE_NAMES, box_features, line_features
from orchestrator.rules.receipt.parse import check_lines, parse_receipt_text, parse_with_evidence
from orchestrator.workers.receipts.tools import line_item_parser

pytestmark = pytest.mark.anyio

# A receipt whose first name-like line is a store number (misread: "Stoe") printed small at the left
# margin; the seller's name is centred under it.
LINES = [
    ("1/22/2016 1:59PM Sales Receipt", [40, 60, 250, 76]),
    ("Stoe 1", [40, 78, 80, 92]),
    ("Bucky's Butchery", [100, 96, 196, 112]),
    ("1805 Linden Dr", [114, 114, 182, 128]),
    ("Madison, WI 53706", [106, 130, 190, 144]),
    ("Ground beef 1 lb 5.99", [40, 160, 250, 174]),
    ("Pork chops 7.49", [40, 176, 250, 190]),
    ("TOTAL 13.48", [40, 192, 250, 206]),
]
TEXT = "\n".join(text for text, _ in LINES)


def _ocr_lines(rows: list[tuple[str, list[int]]]) -> list[OcrLine]:
    return [OcrLine(text=text, box=[float(v) for v in box]) for text, box in rows]


def test_a_centred_name_wins_over_a_store_number_at_the_margin() -> None:
    lines = [text for text, _ in LINES]
    assert read_header(lines).merchant == "Stoe 1"  # the text alone: the first name-like line
    header = read_header(lines, [box for _, box in LINES])
    assert header.merchant == "Bucky's Butchery"
    assert header.address == "1805 Linden Dr Madison, WI 53706"


def test_the_parser_reads_the_boxes_it_is_given_and_the_text_alone_without_them() -> None:
    assert parse_receipt_text(TEXT).merchant == "Stoe 1"
    with_boxes = parse_receipt_text(TEXT, _ocr_lines(LINES))
    assert with_boxes.merchant == "Bucky's Butchery"
    assert with_boxes.total == 13.48
    # Lines without boxes (a text file read by the text back-end) change nothing.
    plain = [OcrLine(text=text) for text, _ in LINES]
    assert parse_with_evidence(TEXT, lines=plain)[0] == parse_with_evidence(TEXT)[0]


def test_a_plainly_set_registered_name_is_kept() -> None:
    rows = [
        ("ALPHA TRADING SDN BHD", [10, 10, 150, 24]),  # left-aligned, body size, but a registered company
        ("WELCOME", [120, 30, 180, 44]),
        ("BIG SALE TODAY", [100, 50, 200, 64]),
        ("NO 3, JALAN MAJU, 47000 SELANGOR", [10, 70, 290, 84]),
        ("TEA 2.00", [10, 90, 290, 104]),
    ]
    header = read_header([t for t, _ in rows], [b for _, b in rows])
    assert header.merchant == "ALPHA TRADING SDN BHD"


def test_line_shapes_measure_centring_and_size_against_the_receipt() -> None:
    boxes: list[list[float] | None] = [
        [100, 0, 200, 40],  # centred, twice body height
        [0, 50, 300, 70],
        [0, 80, 300, 100],
        [0, 110, 60, 130],  # left margin
        None,
    ]
    shapes = line_shapes(boxes)
    first, _, _, left, missing = shapes
    assert first is not None and first.prominent and first.height == pytest.approx(2.0)
    assert left is not None and not left.prominent and left.offset > 0.3
    assert missing is None
    assert line_shapes([None, [5, 5, 1, 1]]) == [None, None]  # no usable box: nothing is known
    assert Shape(offset=0.5, height=1.5).prominent  # large print counts even off-centre


@pytest.mark.parametrize(
    ("row", "name"),
    [
        ("MCDONALDS TEL# (661)797-2111", "MCDONALDS"),
        ("SHOPPINGSTORE 03:22PM 618", "SHOPPINGSTORE"),
        ("Subway#15936-0Phone 608-758-4560", "Subway#15936-0"),
        ("Transmetropolitan 145EClaytonSt", "Transmetropolitan"),
        ("Pho Saigon 12/03/2019", "Pho Saigon"),
        ("TEL: 03-1234567", None),  # no name before the phone
        ("SETAPAK, 53000 KUALA LUMPUR.", None),  # an address line is not a name and its town
        ("Date : 04/12/17 5:06 PM", None),
        ("ALPHA SDN BHD", None),  # nothing else on the row: the line itself is the candidate
    ],
)
def test_the_name_at_the_start_of_a_merged_row(row: str, name: str | None) -> None:
    assert name_prefix(row) == name


def test_a_merged_row_gives_its_name_to_the_header() -> None:
    lines = ["MCDONALDS TEL# (661)797-2111", "LOST HILLS, CA 93249", "BIG MAC 4.99", "TOTAL 4.99"]
    assert read_header(lines).merchant == "MCDONALDS"


def test_a_registered_form_on_the_next_line_completes_the_name() -> None:
    lines = ["AIK HUAT HARDWARE", "ENTERPRISE SETIA", "ALAM SDN BHD", "822737-X", "NO.17-G, JALAN SETIA INDAH"]
    assert read_header(lines).merchant == "AIK HUAT HARDWARE ENTERPRISE SETIA ALAM SDN BHD"
    # OCR split a business kind into pieces: the line above still belongs to the name.
    lines = ["WESTERN EASTERN", "S TA T I ONERY SDN. BHD", "CO REG NO : 21003B-K", "42-46, JLN SULTAN AZLAN"]
    assert read_header(lines).merchant == "WESTERN EASTERN S TA T I ONERY SDN. BHD"


def test_box_features_are_zero_without_boxes_and_measured_with_them() -> None:
    assert FEATURE_NAMES[-len(BOX_FEATURES) :] == BOX_FEATURES
    lines = [text for text, _ in LINES]
    header = read_header(lines)
    plain = line_features(lines, header)
    boxed = line_features(lines, header, [box for _, box in LINES])
    assert all(row[-len(BOX_FEATURES) :] == [0.0] * len(BOX_FEATURES) for row in plain)
    assert [row[: -len(BOX_FEATURES)] for row in plain] == [row[: -len(BOX_FEATURES)] for row in boxed]
    geometry = box_features([box for _, box in LINES], len(LINES))
    named = dict(zip(BOX_FEATURES, geometry[2], strict=True))
    assert named["has_box"] == 1.0 and named["centre_offset"] < 0.05
    assert dict(zip(BOX_FEATURES, geometry[1], strict=True))["centre_offset"] > 0.2
    with pytest.raises(ValueError, match="align"):
        box_features([[0, 0, 1, 1]], 2)


def test_lines_that_are_not_the_texts_are_refused_naming_the_line() -> None:
    with pytest.raises(ValueError, match="8 OCR lines with text for 7 lines"):
        check_lines("\n".join(TEXT.splitlines()[1:]), _ocr_lines(LINES))
    other = _ocr_lines(LINES)
    other[2] = OcrLine(text="Someone Else", box=[100, 96, 196, 112])
    with pytest.raises(ValueError, match="line 3 reads 'Someone Else'"):
        parse_with_evidence(TEXT, lines=other)


async def test_the_tool_takes_the_ocr_lines_and_reports_a_mismatch_as_a_tool_error() -> None:
    parsed = await line_item_parser(TEXT, _ocr_lines(LINES))
    assert parsed.merchant == "Bucky's Butchery"
    with pytest.raises(ToolError, match="line_item_parser: lines: 7 OCR lines"):
        await line_item_parser(TEXT, _ocr_lines(LINES[:7]))


def test_features_of_the_first_lines_are_those_of_the_whole_receipt() -> None:
    lines = [text for text, _ in LINES]
    boxes = [box for _, box in LINES]
    header = read_header(lines, boxes)
    whole = line_features(lines, header, boxes)
    assert line_features(lines, header, boxes, limit=3) == whole[:3]
    assert line_features(lines, header, boxes, limit=99) == whole
    # Read alone, the first three lines would look like a whole receipt: other positions, other ranks.
    assert line_features(lines[:3], header, boxes[:3]) != whole[:3]


def test_house_numbers_listed_with_a_comma_open_the_address_and_are_not_an_amount() -> None:
    lines = ["PASAR RAYA MEGA MAJU", "(SEMENYIH) SDN BHD", "NO 24,25 & 26,", "JALAN PUSAT PERNIAGAAN 4", "TEL: 03-1234"]
    assert read_header(lines).address == "NO 24,25 & 26, JALAN PUSAT PERNIAGAAN 4"
    assert read_header(["ALPHA CAFE", "TOTAL 24,25", "NO 3, JALAN MAJU"]).address == "NO 3, JALAN MAJU"


def test_a_us_company_form_above_the_address_is_the_registered_name() -> None:
    lines = ["NVOICE#30500", "Closed to Cash Purchase", "GREEN'S FEED INC.", "75 BAILEY DR.", "TOTAL 5.00"]
    assert read_header(lines).merchant == "GREEN'S FEED INC."
