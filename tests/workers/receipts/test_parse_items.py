"""Line items: one per printed row, or rebuilt from one OCR box per line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.rules.models import LineItem
from orchestrator.rules.receipt.parse import parse_receipt_text


def items_of(*rows: str) -> list[LineItem]:
    return parse_receipt_text("\n".join(rows)).items


def test_an_item_row_gives_name_and_amount():
    (item,) = items_of("SHOP", "Bananas 1.14 T", "TOTAL 1.14")
    assert (item.name, item.quantity, item.unit_price, item.amount) == ("Bananas", 1.0, None, 1.14)


def test_a_quantity_times_a_unit_price_is_read():
    (item,) = items_of("SHOP", "Coffee 2 x 3.50 7.00", "TOTAL 7.00")
    assert (item.name, item.quantity, item.unit_price, item.amount) == ("Coffee", 2.0, 3.5, 7.0)


def test_a_quantity_at_a_unit_price_is_read():
    (item,) = items_of("SHOP", "Donut 3 @ 1.20 3.60", "TOTAL 3.60")
    assert (item.name, item.quantity, item.unit_price, item.amount) == ("Donut", 3.0, 1.2, 3.6)


def test_a_leading_quantity_is_taken_off_the_name():
    (item,) = items_of("SHOP", "2 Muffins 5.50", "TOTAL 5.50")
    assert (item.name, item.quantity, item.amount) == ("Muffins", 2.0, 5.5)


def test_discount_lines_are_negative_items_in_every_notation():
    items = items_of("SHOP", "Shirt 20.00", "Member discount -2.00", "Coupon 1.00-", "Promo (1.50)", "TOTAL 15.50")
    assert [item.amount for item in items] == [20.0, -2.0, -1.0, -1.5]


def test_box_per_line_items_with_names_first_are_rebuilt():
    items = items_of("DINER", "Guests:2", "1", "PernilLunch", "8.59", "2", "TsingTao", "9.00", "Subtotal", "17.59")
    assert [(i.name, i.quantity, i.amount) for i in items] == [("PernilLunch", 1.0, 8.59), ("TsingTao", 2.0, 9.0)]


def test_box_per_line_items_with_names_after_their_numbers_are_rebuilt():
    items = items_of(
        "HARDWARE SDN BHD",
        "ITEM",
        "QTY",
        "PRICE",
        "AMOUNT",
        "8239",
        "1",
        "15.00",
        "15.00",
        "SR: SILICONE GUN",
        "2016",
        "3",
        "0.70",
        "2.10",
        "SR: PVC WIRE TAPE",
        "TOTAL QTY:",
        "4",
        "TOTAL :",
        "17.10",
    )
    assert [(i.name, i.quantity, i.unit_price, i.amount) for i in items] == [
        ("SR: SILICONE GUN", 1.0, 15.0, 15.0),
        ("SR: PVC WIRE TAPE", 3.0, 0.7, 2.1),
    ]


def test_an_unpriced_line_under_an_item_is_kept_as_a_zero_amount_option():
    items = items_of("GRILL", "SmokeHouse", "9.29", "Fries", "Shake", "4.99", "Subtotal", "14.28")
    assert [(i.name, i.amount) for i in items] == [("SmokeHouse", 9.29), ("Fries", 0.0), ("Shake", 4.99)]


def test_names_and_prices_printed_in_two_columns_are_paired_in_order():
    items = items_of("MARKET", "MEAT", "PRODUCE", "GROCERY", "$3.49", "$2.19", "$1.00", "TOTAL $6.68")
    assert [(i.name, i.amount) for i in items] == [("MEAT", 3.49), ("PRODUCE", 2.19), ("GROCERY", 1.0)]


def test_header_and_summary_lines_are_not_items():
    items = items_of("CAFE", "Table: 4", "Server: Ann", "Latte 4.50", "Subtotal 4.50", "Tax 0.36", "Total 4.86")
    assert [i.name for i in items] == ["Latte"]


@pytest.mark.parametrize(
    ("line", "qty", "unit", "amount"),
    [
        ("Latte 2x3.50 7.00", 2.0, 3.5, 7.0),
        ("Tea 3 @2.00 6.00", 3.0, 2.0, 6.0),
        ("Bagel 2 x $1.25 2.50", 2.0, 1.25, 2.5),
    ],
)
def test_a_quantity_glued_to_its_unit_price_is_still_read(line: str, qty: float, unit: float, amount: float) -> None:
    [item] = parse_receipt_text(f"{line}\nTOTAL {amount:.2f}").items
    assert (item.quantity, item.unit_price, item.amount) == (qty, unit, amount)


@pytest.mark.parametrize(
    ("line", "qty", "unit", "amount"),
    [
        ("Bananas 1.32 lb @ 0.59/lb 0.78", 1.32, 0.59, 0.78),
        ("Chicken Breast 2.10 lb @ 4.99/lb 10.48", 2.1, 4.99, 10.48),
        ("Carrots 0.45 kg x 2.99 /kg 1.35", 0.45, 2.99, 1.35),
    ],
)
def test_weighed_goods_read_weight_and_price_per_unit(line: str, qty: float, unit: float, amount: float) -> None:
    [item] = parse_receipt_text(f"{line}\nTOTAL {amount:.2f}").items
    assert (item.quantity, item.unit_price, item.amount) == (qty, unit, amount)


# -- OCR's unit look-alikes and lines whose numbers disagree (issue 12, item 8) ---------------------------

GROCERY_AS_OCR_READS_IT = """GREEN VALLEY MARKET
2250 Oak Ave, Springfield, IL 62704
2024-03-16 17:05
Bananas 1.32 Ib @ 0.59/lb 0.78
Sourdough Bread 5.49
ChickenBreast 2.10Ib@4.99/lb 10.48
Subtotal 16.75
TOTAL $16.75"""


def test_the_headline_grocery_lines_read_ocr_ib_as_pounds():
    receipt = parse_receipt_text(GROCERY_AS_OCR_READS_IT)
    bananas, bread, chicken = receipt.items
    assert (bananas.name, bananas.quantity, bananas.unit_price, bananas.amount) == ("Bananas", 1.32, 0.59, 0.78)
    assert (chicken.name, chicken.quantity, chicken.unit_price, chicken.amount) == ("ChickenBreast", 2.1, 4.99, 10.48)
    assert bread.amount == 5.49
    assert receipt.confidence == 1.0 and receipt.issues == []


@pytest.mark.parametrize(
    ("row", "quantity", "unit"),
    [
        ("Pears 1.50 1b @ 1.20/1b 1.80", 1.5, 1.2),
        ("Pears 1.50 |b @ 1.20/|b 1.80", 1.5, 1.2),
        ("Pears 1.50lbs @ 1.20/Ib 1.80", 1.5, 1.2),
        ("Apples 0.75 kq x 2.40/kq 1.80", 0.75, 2.4),
    ],
)
def test_unit_look_alikes_read_as_units(row: str, quantity: float, unit: float):
    (item,) = items_of("SHOP", row, "TOTAL 1.80")
    assert (item.quantity, item.unit_price, item.amount) == (quantity, unit, 1.8)


def test_look_alikes_inside_words_and_ambiguous_digits_stay():
    from orchestrator.rules.receipt._items import fix_unit_confusions

    assert fix_unit_confusions("Ibis Hotel 1b Jalan") == "Ibis Hotel 1b Jalan"  # no number before "1b"
    assert fix_unit_confusions("Weight 2.101b") == "Weight 2.101b"  # the 1 may be the weight's digit
    assert fix_unit_confusions("Kqwerty 3 kqa") == "Kqwerty 3 kqa"


def test_a_line_whose_quantity_times_price_is_not_its_amount_is_a_mismatch():
    receipt = parse_receipt_text("SHOP\nBananas 1 @ 1.32 0.78\nBread 2.00\nTOTAL 2.78")
    assert receipt.total == 2.78
    assert any("'Bananas'" in issue and "0.78" in issue for issue in receipt.issues)
    assert receipt.confidence < 1.0
    agreeing = parse_receipt_text("SHOP\nBananas 2 @ 0.39 0.78\nBread 2.00\nTOTAL 2.78")
    assert agreeing.issues == [] and agreeing.confidence > receipt.confidence


def test_two_mismatched_lines_cost_more_confidence_than_one():
    one = parse_receipt_text("SHOP\nApples 1 @ 1.32 0.78\nBread 2.00\nSubtotal 2.78\nTOTAL 2.78")
    two = parse_receipt_text("SHOP\nApples 1 @ 1.32 0.78\nBread 3 @ 1.00 2.00\nSubtotal 2.78\nTOTAL 2.78")
    assert two.confidence < one.confidence < 1.0


@given(
    weight=st.decimals(min_value="0.05", max_value="25", places=2),
    price=st.decimals(min_value="0.10", max_value="40", places=2),
    unit=st.sampled_from(["lb", "Ib", "1b", "|b"]),
    glued=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_weighed_goods_with_any_unit_spelling_parse_and_agree(weight, price, unit, glued):
    amount = (weight * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assume(amount > 0 and not (glued and unit == "1b"))  # "2.101b": the 1 may be a digit of the weight
    row = f"Grapes {weight}{unit}@{price}/lb {amount}" if glued else f"Grapes {weight} {unit} @ {price}/lb {amount}"
    receipt = parse_receipt_text(f"SHOP\n{row}\nTOTAL {amount}")
    (item,) = receipt.items
    assert (item.quantity, item.unit_price, item.amount) == (float(weight), float(price), float(amount))
    assert not any("does not match its amount" in issue for issue in receipt.issues)


def test_a_quantity_column_between_name_and_amount_is_the_quantity():
    burger, double, pepsi = items_of(
        "SHOP",
        "Description Qty Amount",
        "BURGER SINGLE 1 5.61",
        "BURGER DOUBLE 2 15.98",
        "Pepsi Size 10 2.00",
        "TOTAL 23.59",
    )
    assert (burger.name, burger.quantity, burger.amount) == ("BURGER SINGLE", 1.0, 5.61)
    assert (double.name, double.quantity, double.amount) == ("BURGER DOUBLE", 2.0, 15.98)
    assert (pepsi.name, pepsi.quantity) == ("Pepsi Size 10", 1.0)  # a size, not a count


def test_a_count_joined_to_the_name_by_a_hyphen_is_the_quantity() -> None:
    receipt = parse_receipt_text("1-Large Diet Coke 1.69\n2-Tenderloin 9.78\nTOTAL 11.47")
    assert [(i.name, i.quantity, i.amount) for i in receipt.items] == [
        ("Large Diet Coke", 1.0, 1.69),
        ("Tenderloin", 2.0, 9.78),
    ]


# -- rows as OCR merges them from photographed receipts ---------------------------------------------


def test_a_name_ending_in_a_digit_keeps_its_digit_before_a_dollar_amount():
    # "FT2 $3.49": the "$" is the amount's own mark, not a currency printed after the "2".
    items = items_of("MARKET", "MEAT FT2 $3.49", "PRODUCE FT2 $2.19", "TOTAL $5.68")
    assert [(item.name, item.amount) for item in items] == [("MEAT FT2", 3.49), ("PRODUCE FT2", 2.19)]


def test_a_quantity_printed_with_decimals_before_the_name_is_taken_off():
    items = items_of("TATEL", "1,00 Solomillo Parrilla 31,00", "2,00 Pan y Aperitivo 3,50 7,00", "Total 38,00")
    assert [(item.name, item.quantity, item.amount) for item in items] == [
        ("Solomillo Parrilla", 1.0, 31.0),
        ("Pan y Aperitivo", 2.0, 7.0),
    ]


def test_numbers_glued_between_a_name_and_its_amount_are_not_part_of_the_name():
    # OCR lost the space between the quantity 1.00 and the unit price 120.00.
    items = items_of("CAFE", "PADDU 1.00120.00 120.00", "FILTER COFFEE 1.006 60.00 60.00", "TOTAL 180.00")
    assert [(item.name, item.amount) for item in items] == [("PADDU", 120.0), ("FILTER COFFEE", 60.0)]


def test_an_amount_glued_to_a_closing_parenthesis_is_read():
    items = items_of("SUBS", '6"Seafood Sub 4.79', "-Fresh Value Meal(21-1)2.70", "TOTAL 7.49")
    assert [(item.name, item.amount) for item in items] == [('6"Seafood Sub', 4.79), ("-Fresh Value Meal(21-1)", 2.7)]


def test_a_modifier_count_behind_asterisks_is_taken_off_the_name():
    items = items_of("GRILL", "1 RIBEYE 24.00", "** 1 RARE 0.00", "**1FRENCH FRIES 0.00", "TOTAL 24.00")
    assert [(item.name, item.quantity) for item in items] == [("RIBEYE", 1.0), ("RARE", 1.0), ("FRENCH FRIES", 1.0)]


def test_a_count_between_name_and_unit_price_is_the_quantity_when_the_row_agrees():
    items = items_of("CAFE", "6701PORK 2 12.00 24.00", "Route 66 3 5.00 5.00", "TOTAL 29.00")
    assert [(item.name, item.quantity, item.amount) for item in items] == [
        ("6701PORK", 2.0, 24.0),
        ("Route 66 3", 1.0, 5.0),  # 3 x 5.00 is not 5.00: the 3 stays in the name
    ]


def test_an_amount_ocr_garbled_is_read_again_when_quantity_times_unit_price_vouches_for_it():
    items = items_of(
        "BUTCHERY",
        "Eggs white 1 $2.25 $225",  # the decimal point lost
        "Osso Bucco 3.36 $2.99 510.05",  # the "$" read as a 5
        "Stew Meat 2 $6.99 $999",  # nothing makes 999 out of 2 x 6.99: left as printed
        "TOTAL $12.30",
    )
    assert [(item.name, item.quantity, item.amount) for item in items] == [
        ("Eggs white", 1.0, 2.25),
        ("Osso Bucco", 3.36, 10.05),
        ("Stew Meat 2", 1.0, 999.0),
    ]
