"""The evidence behind a parsed total's confidence: independent readings of the total, amounts that rule it out,
a rival total the numbers confirm, the tax breakdown table; and how the fitted weights turn it into a chance."""

from __future__ import annotations

import pytest

from orchestrator.rules.models import ParsedReceipt
from orchestrator.rules.receipt.confidence import (
    FEATURES,
    ConfidenceWeights,
    FieldWeights,
    field_confidence,
    shipped_weights,
)
from orchestrator.rules.receipt.layout_model import LayoutModel
from orchestrator.rules.receipt.parse import parse_with_evidence


def total_evidence(text: str) -> dict[str, float]:
    _, found = parse_with_evidence(text, ConfidenceWeights(), layout=None, lexicon=None)
    return dict(zip(FEATURES["total"], found["total"], strict=True))


AGREEING = "SHOP\nTEA 2.00\nRICE 3.00\nSubtotal 5.00\nTax 0.30\nTOTAL 5.30\nCASH 10.00\nCHANGE 4.70"


def test_readings_that_agree_to_the_cent_count_as_exact() -> None:
    found = total_evidence(AGREEING)
    assert found["exact_readings"] == 1.0  # subtotal + tax, the items (+ tax), what was paid
    assert found["near_only"] == 0.0 and found["implausible"] == 0.0


def test_a_total_a_cent_off_every_other_reading_is_a_near_miss() -> None:
    # OCR misread the total's last digit: subtotal + tax + rounding says 112.45 (one reading: not overruled).
    text = "SHOP\nSub Total 106.10\nTotal GST 6.37\nRounding -0.02\nTotal 112.46"
    found = total_evidence(text)
    assert found["exact_readings"] == 0.0
    assert found["near_only"] == 1.0


def test_two_readings_that_agree_overrule_a_total_one_digit_away() -> None:
    # Subtotal + tax + rounding and the cash paid both say 112.45: the printed 112.46 is a misread digit.
    text = "SHOP\nSub Total 106.10\nTotal GST 6.37\nRounding -0.02\nTotal 112.46\nCASH 112.45\nChange 0.00"
    parsed, _ = parse_with_evidence(text, ConfidenceWeights(), layout=None, lexicon=None)
    assert parsed.total == 112.45
    assert any("printed as 112.46" in issue and "misread digit" in issue for issue in parsed.issues)


@pytest.mark.parametrize(
    "text",
    [
        # More than one digit away from what the readings agree on: a different total, not a misread one.
        "SHOP\nSub Total 106.10\nTotal GST 6.37\nRounding -0.02\nTotal 118.46\nCASH 112.45\nChange 0.00",
        # Only one reading (the subtotal) disagrees with the printed total.
        "SHOP\nSub Total 106.10\nTotal GST 6.37\nRounding -0.02\nTotal 112.46\nCASH 200.00\nChange 87.00",
        # The printed total is confirmed by a reading (the cash paid): it stays.
        "SHOP\nTEA 112.45\nSub Total 112.45\nTotal 112.46\nCASH 112.46\nChange 0.00",
    ],
)
def test_the_printed_total_stays_unless_two_readings_agree_one_digit_away(text: str) -> None:
    parsed, _ = parse_with_evidence(text, ConfidenceWeights(), layout=None, lexicon=None)
    printed = float(text.split("Total ")[-1].split("\n")[0])
    assert parsed.total == printed
    assert not any("misread digit" in issue for issue in parsed.issues)


def test_a_tax_bigger_than_the_total_rules_the_total_out() -> None:
    # Labels stacked above their values paired the wrong way round: the total read is the tax.
    found = total_evidence("GRILL\nGreek Salad $8.99\nSub Total $17.99\nSales Tax $19.38\nOrder Total $1.39")
    assert found["implausible"] == 1.0
    assert total_evidence(AGREEING)["implausible"] == 0.0


def test_a_subtotal_above_the_total_without_a_discount_rules_the_total_out() -> None:
    assert total_evidence("SHOP\nSubtotal 26.16\nTax 2.49\nTOTAL 13.00")["implausible"] == 1.0
    assert total_evidence("SHOP\nSubtotal 26.16\nDiscount 15.00\nTOTAL 11.16")["implausible"] == 0.0


def test_a_rival_total_the_subtotal_confirms_counts_against_the_total_chosen() -> None:
    text = "DINER\nBurger 9.29\nShake 4.99\nSubtotal 26.16\nTax 2.49\nTotal 28.65\nBalance Due 23.65"
    receipt, found = parse_with_evidence(text, ConfidenceWeights(), layout=None, lexicon=None)
    evidence = dict(zip(FEATURES["total"], found["total"], strict=True))
    if receipt.total == 23.65:  # the stronger label won: the confirmed 28.65 is a rival
        assert evidence["rival_checks"] == 1.0
    else:
        assert receipt.total == 28.65 and evidence["rival_checks"] == 0.0 and evidence["exact_readings"] > 0
    assert total_evidence(AGREEING)["rival_checks"] == 0.0


GST_TABLE = "HARDWARE\nBOLT 4.00\nTOTAL {total}\nCASH 20.00\nGST SUMMARY\nCODE AMOUNT TAX\nSR 3.77 6% 0.23"


@pytest.mark.parametrize(("total", "agrees", "disagrees"), [("4.00", 1.0, 0.0), ("4.20", 0.0, 1.0)])
def test_the_tax_breakdown_table_confirms_or_contradicts_the_total(total: str, agrees: float, disagrees: float) -> None:
    found = total_evidence(GST_TABLE.format(total=total))
    assert (found["table_agrees"], found["table_disagrees"]) == (agrees, disagrees)


def test_without_a_tax_table_neither_table_feature_is_set() -> None:
    found = total_evidence(AGREEING)
    assert (found["table_agrees"], found["table_disagrees"]) == (0.0, 0.0)


def test_a_total_printed_twice_is_read_twice() -> None:
    once = total_evidence("SHOP\nTEA 9.00\nTOTAL 5.30")
    twice = total_evidence("SHOP\nTEA 9.00\nTOTAL 5.30\nAMOUNT DUE 5.30")
    assert once["exact_readings"] == 0.0 and twice["exact_readings"] > 0.0


def test_a_missing_total_has_no_evidence_and_zero_confidence() -> None:
    found = total_evidence("SHOP\nTEA 2.00")
    assert set(found.values()) == {0.0}
    assert field_confidence({"total": list(found.values())})["total"] == 0.0


def test_the_weights_turn_evidence_into_a_probability() -> None:
    names = list(FEATURES["total"])
    weights = ConfidenceWeights(fields={"total": FieldWeights(features=names, coef=[0.0] * len(names), intercept=0.0)})
    values = [1.0] + [0.0] * (len(names) - 1)
    assert field_confidence({"total": values}, weights)["total"] == 0.5
    strong = weights.fields["total"].model_copy(update={"coef": [2.0 if n == "exact_readings" else 0.0 for n in names]})
    exact = list(values)
    exact[names.index("exact_readings")] = 1.0
    sure = field_confidence({"total": exact}, ConfidenceWeights(fields={"total": strong}))["total"]
    assert sure == pytest.approx(0.8808, abs=1e-4)


def test_the_shipped_weights_cover_every_field_and_rank_confirmed_totals_above_contradicted_ones() -> None:
    assert set(shipped_weights().fields) == {"total", "date", "merchant", "address"}

    def confidence(text: str) -> float:
        receipt, _ = parse_with_evidence(text, layout=None, lexicon=None)
        return receipt.field_confidence["total"]

    confirmed = confidence(AGREEING)
    unconfirmed = confidence("SHOP\nTEA 2.00\nRICE 3.00\nTOTAL 9.99")
    contradicted = confidence("SHOP\nTEA 2.00\nSubtotal 26.16\nTax 2.49\nTOTAL 13.00")
    assert confirmed > unconfirmed > contradicted


# --- the layout model's agreement with the rules' header ------------------------------------------------------

HEADER = "KEDAI MAJU SDN BHD\nNO 12, JALAN BUKIT 3\n81300 SKUDAI JOHOR\nTEA 2.00\nTOTAL 2.00"


def test_agreement_is_the_models_probability_of_the_lines_a_field_was_read_from() -> None:
    from orchestrator.rules.receipt.layout_model import agreement

    lines = ["KEDAI MAJU SDN BHD", "NO 12, JALAN BUKIT 3", "81300 SKUDAI JOHOR"]
    probabilities = [
        {"company": 0.9, "address": 0.1, "other": 0.0},
        {"company": 0.1, "address": 0.7, "other": 0.2},
        {"company": 0.0, "address": 0.5, "other": 0.5},
    ]
    assert agreement(lines, probabilities, "KEDAI MAJU SDN BHD", "company") == pytest.approx(0.9)
    address = "NO 12, JALAN BUKIT 3 81300 SKUDAI JOHOR"
    assert agreement(lines, probabilities, address, "address") == pytest.approx(0.6)
    assert agreement(lines, probabilities, None, "company") == 0.0
    assert agreement(lines, probabilities, "A NAME ON NO LINE", "company") == 0.0


def header_evidence(
    layout: LayoutModel | None, agreement_layout: LayoutModel | None = None
) -> tuple[ParsedReceipt, dict[str, float], dict[str, float]]:
    parsed, found = parse_with_evidence(
        HEADER, ConfidenceWeights(), layout=layout, lexicon=None, agreement_layout=agreement_layout
    )
    merchant = dict(zip(FEATURES["merchant"], found["merchant"], strict=True))
    address = dict(zip(FEATURES["address"], found["address"], strict=True))
    return parsed, merchant, address


def test_without_a_layout_model_the_evidence_says_so() -> None:
    _, merchant, address = header_evidence(layout=None)
    assert merchant["layout_absent"] == 1.0 and merchant["layout_company"] == 0.0
    assert address["layout_absent"] == 1.0 and address["layout_address"] == 0.0


def test_a_model_asked_only_for_agreement_leaves_the_rules_header_and_scores_it() -> None:
    from orchestrator.rules.receipt.layout_model import shipped_layout_model

    model = shipped_layout_model()
    assert model is not None
    rules, _, _ = header_evidence(layout=None)
    scored, merchant, address = header_evidence(layout=None, agreement_layout=model)
    assert scored.merchant == rules.merchant == "KEDAI MAJU SDN BHD"
    assert scored.address == rules.address
    assert merchant["layout_absent"] == 0.0 and address["layout_absent"] == 0.0
    # The shipped model reads a legal company name on the first line as the company, the street below as address.
    assert merchant["layout_company"] > 0.5
    assert address["layout_address"] > 0.5
