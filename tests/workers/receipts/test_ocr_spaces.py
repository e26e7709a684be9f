"""Putting back the spaces RapidOCR drops, judged from blank columns in the ink (synthetic pages, no engine)."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

from orchestrator.workers.receipts.ocr_backends._spaces import restore_spaces  # noqa: E402

HEIGHT = 24


def page(glyphs: list[tuple[int, int]], width: int = 200):
    """A white line with a black bar (a 'glyph') at each [x1, x2) column range."""
    gray = np.full((HEIGHT, width), 255, dtype=np.uint8)
    for x1, x2 in glyphs:
        gray[4:20, x1:x2] = 0
    return gray


def boxes(glyphs: list[tuple[int, int]]) -> list[list[list[float]]]:
    return [[[x1, 0], [x2, 0], [x2, HEIGHT], [x1, HEIGHT]] for x1, x2 in glyphs]


LINE = [[0, 0], [200, 0], [200, HEIGHT], [0, HEIGHT]]


def test_a_wide_gap_between_letters_becomes_a_space():
    glyphs = [(10, 20), (22, 32), (50, 60), (62, 72)]  # "AB", a word gap, "CD"
    assert restore_spaces(page(glyphs), LINE, "ABCD", boxes(glyphs), list("ABCD")) == "AB CD"


def test_ordinary_letter_spacing_adds_nothing():
    glyphs = [(10, 20), (22, 32), (34, 44), (46, 56)]
    assert restore_spaces(page(glyphs), LINE, "ABCD", boxes(glyphs), list("ABCD")) == "ABCD"


def test_digits_are_never_split():
    glyphs = [(10, 20), (22, 32), (34, 36), (60, 70), (72, 82)]  # a wide gap inside "12.50"
    assert restore_spaces(page(glyphs), LINE, "12.50", boxes(glyphs), list("12.50")) == "12.50"


def test_spaces_the_recogniser_found_are_kept():
    glyphs = [(10, 20), (22, 32), (50, 60), (62, 72), (100, 110)]
    text = "AB CDE"
    assert restore_spaces(page(glyphs), LINE, text, boxes(glyphs), list("ABCDE")) == "AB CD E"


def test_text_that_does_not_match_the_character_boxes_is_left_alone():
    glyphs = [(10, 20), (50, 60)]
    assert restore_spaces(page(glyphs), LINE, "AB", boxes(glyphs), ["A"]) == "AB"
    assert restore_spaces(page(glyphs), LINE, "中A", boxes(glyphs), ["中", "A"]) == "中A"


def test_a_blank_or_flat_line_is_left_alone():
    glyphs = [(10, 20), (50, 60)]
    flat = np.full((HEIGHT, 200), 200, dtype=np.uint8)
    assert restore_spaces(flat, LINE, "AB", boxes(glyphs), list("AB")) == "AB"
