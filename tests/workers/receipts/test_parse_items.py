"""Line items: one per printed row, or rebuilt from one OCR box per line."""

from __future__ import annotations

import pytest

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
