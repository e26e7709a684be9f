"""OCR repair of the receipt header: look-alike characters and the lexicon learned from labels."""

from __future__ import annotations

import pytest

from orchestrator.rules.receipt.lexicon import (
    Lexicon,
    learn_lexicon,
    repair_header,
    repair_line,
    weighted_distance,
)
from orchestrator.rules.receipt.parse import parse_with_evidence

VENDORS = {
    "ALPHA": ["ALPHA TRADING SDN BHD", "NO 3, JALAN MAJU, TAMAN SERI, 47000 PETALING JAYA, SELANGOR"],
    "BETA": ["BETA HARDWARE SDN BHD", "LOT 7, JALAN BESAR, 43300 SERI KEMBANGAN, SELANGOR DARUL EHSAN"],
    "GAMMA": ["GAMMA ENTERPRISE SDN BHD", "12, JALAN PUDU, TAMAN MAJU, 55100 KUALA LUMPUR"],
    "DELTA": ["DELTA STATIONERY SDN BHD", "LOT 9, TAMAN SERI, 47000 PETALING JAYA, SELANGOR DARUL EHSAN"],
    "EPSILON": ["EPSILON TRADING SDN BHD", "NO 1, JALAN BESAR, 55100 KUALA LUMPUR"],
    "ZETA": ["ZETA ENTERPRISE", "NO 5, JALAN MAJU, 43300 SERI KEMBANGAN"],
}


@pytest.fixture
def lexicon() -> Lexicon:
    return learn_lexicon(VENDORS)


def test_a_word_enters_the_lexicon_only_when_two_vendors_use_it(lexicon: Lexicon) -> None:
    assert lexicon.words["SDN"] == 5 and lexicon.words["JALAN"] == 5
    assert lexicon.pairs["SDN BHD"] == 5 and lexicon.pairs["KUALA LUMPUR"] == 2
    assert "ALPHA" not in lexicon.words and "HARDWARE" not in lexicon.words  # one vendor's own name
    assert learn_lexicon(VENDORS, min_vendors=6).words == {}


def test_digits_inside_words_and_letters_inside_numbers_are_read_back(lexicon: Lexicon) -> None:
    assert repair_line("L0T 7, JALAN BESAR", lexicon) == "LOT 7, JALAN BESAR"
    assert repair_line("691 Collection B1vd", lexicon) == "691 Collection Blvd"
    assert repair_line("551OO KUALA LUMPUR", lexicon) == "55100 KUALA LUMPUR"
    assert repair_line("Bandar Sri,52oo0 KL", lexicon) == "Bandar Sri,52000 KL"


def test_codes_ordinals_and_unit_letters_are_left_as_printed(lexicon: Lexicon) -> None:
    for line in ("UNIT L1-044B, JALAN 3/137B", "JALAN SS15/4B, U13/X", "3RD FLOOR, 2ND AVE", "S117, SECOND FLOOR"):
        assert repair_line(line, lexicon) == line


def test_near_misses_of_known_words_are_corrected_and_known_words_never_change(lexicon: Lexicon) -> None:
    assert repair_line("GAMMA ENTERFRISE", lexicon) == "GAMMA ENTERPRISE"
    assert repair_line("43300 SERI KEMBANGAN, SELANGUR", lexicon) == "43300 SERI KEMBANGAN, SELANGOR"
    assert repair_line("55100 KUALA LUMPLR", lexicon) == "55100 KUALA LUMPUR"
    # An unknown vendor's own name that is no near miss stays as printed.
    assert repair_line("OMEGA TRADING SDN BHD", lexicon) == "OMEGA TRADING SDN BHD"


def test_a_short_token_is_corrected_only_into_a_pair_many_vendors_print(lexicon: Lexicon) -> None:
    assert repair_line("Timeless Kitchenette San Bhd", lexicon) == "Timeless Kitchenette Sdn Bhd"
    assert repair_line("WAHIN HARDWARE SIN BHD", lexicon) == "WAHIN HARDWARE SDN BHD"
    assert repair_line("SAN FRANCISCO", lexicon) == "SAN FRANCISCO"  # no known pair: left alone
    assert repair_line("TAMAN SERISONBHD", lexicon) == "TAMAN SERISDNBHD"  # run together


def test_the_rules_keywords_are_reached_by_one_look_alike_swap_only(lexicon: Lexicon) -> None:
    assert repair_line("SIMPLIFIED TAX INYOICE", lexicon) == "SIMPLIFIED TAX INVOICE"
    assert repair_line("LOT F21, CITTA MALL", lexicon) == "LOT F21, CITTA MALL"  # not MAIL: too short


def test_look_alike_swaps_cost_half_an_edit() -> None:
    assert weighted_distance("HOIDINGS", "HOLDINGS") == 0.5
    assert weighted_distance("TRADER", "TRADERS") == 1.0
    assert weighted_distance("SAN", "SDN") == 1.0


def test_only_the_header_is_repaired() -> None:
    lexicon = learn_lexicon(VENDORS)
    lines = ["GAMMA ENTERFRISE", "L0T 7"] + ["ITEM 1.00"] * 3 + ["L0T 9"]
    assert repair_header(lines, lexicon, depth=2) == ["GAMMA ENTERPRISE", "LOT 7"] + lines[2:]
    assert repair_header(lines, None, depth=2) == lines


def test_the_parser_reads_a_misread_company_and_address_through_the_lexicon(lexicon: Lexicon) -> None:
    text = (
        "GAMMA ENTERFRISE SAN BHD\nL0T 9, JALAN PUDU,\n551OO KUALA LUMPLR\n10 0CT 2017\nTEA 2.00\nRICE 3.00\nTOTAL 5.00"
    )
    plain, _ = parse_with_evidence(text, layout=None, lexicon=None)
    repaired, _ = parse_with_evidence(text, layout=None, lexicon=lexicon)
    assert plain.merchant == "GAMMA ENTERFRISE SAN BHD" and plain.date is None
    assert repaired.merchant == "GAMMA ENTERPRISE SDN BHD"
    assert repaired.address == "LOT 9, JALAN PUDU, 55100 KUALA LUMPUR"
    assert repaired.date == "2017-10-10" and repaired.total == plain.total == 5.0


def test_a_leading_zero_before_small_letters_and_stray_glyphs_of_another_script_are_misreadings(
    lexicon: Lexicon,
) -> None:
    assert repair_line("Luna Grill 0xnard", lexicon) == "Luna Grill Oxnard"
    assert repair_line("开 JAWED HABIB", lexicon) == "JAWED HABIB"
    assert repair_line("0800 TAXI", lexicon) == "0800 TAXI"
    assert repair_line("寿司 SUSHI", lexicon) == "寿司 SUSHI"  # a word of two glyphs is a word
