"""Which printed amount is the total, the subtotal and the tax."""

from __future__ import annotations

import pytest

from orchestrator.rules.receipt._labels import Label, classify
from orchestrator.rules.receipt.parse import parse_receipt_text


def lines(*rows: str) -> str:
    return "\n".join(rows)


@pytest.mark.parametrize(
    "label",
    [
        "TOTAL",
        "Total Incl. GST",
        "AMOUNT DUE",
        "NETT",
        "Grand Total",
        "Balance due",
        "T0TAL",
        "TOTAI",
        "TTL",
        "TOTALDUE",
        "Amount:",
        "BAL.DUE",
        "AMOUNT TO BE PAID",
        "Payment Due",
        "TOTAL (RM)",
        "TOTAL:MYR",
        "Total TTC",
        "SUMME",
        "Totaal",
        "lotal",
        "Totsl",
        "TOTEL",
        "19:32:35 Total:",
    ],
)
def test_a_total_is_found_under_any_usual_label(label: str):
    assert parse_receipt_text(lines("SHOP", "Coffee 3.50", f"{label} 3.50")).total == 3.5
    assert parse_receipt_text(lines("SHOP", "Coffee 3.50", label, "3.50")).total == 3.5


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("CASH", Label.TENDERED),
        ("CHANGE", Label.CHANGE),
        ("Amount tendered", Label.TENDERED),
        ("ROUNDING ADJ", Label.ROUNDING),
        ("TOTAL QTY: 9", Label.COUNT),
        ("Total items 4", Label.COUNT),
        ("TOTAL GST (RM)", Label.TAX),
        ("SUB-TOTAL (EX)", Label.SUBTOTAL),
        ("TOTAL EXCL. GST", Label.SUBTOTAL),
        ("TOTAL SAVINGS", Label.DISCOUNT),
        ("CASHIER: ANNE", None),
        ("TAX INVOICE", None),
        ("10:15 AM Cash", Label.TENDERED),
        ("12:30 Table 5", None),
        ("TOTES BAG", None),
    ],
)
def test_lines_that_are_not_the_total_are_told_apart(line: str, label: Label | None):
    assert classify(line) == label


def test_cash_change_rounding_and_item_count_never_become_the_total():
    receipt = parse_receipt_text(
        lines("SHOP", "Bread 2.40", "Milk 1.55", "TOTAL QTY 2", "TOTAL 3.95", "CASH 10.00", "CHANGE 6.05")
    )
    assert receipt.total == 3.95


def test_a_value_on_the_line_after_its_label_is_paired_with_it():
    receipt = parse_receipt_text(
        lines("SHOP", "Tea", "1", "4.00", "SUBTOTAL", ":", "4.00", "TOTAL", "RM", "4.24", "GST", "0.24")
    )
    assert (receipt.subtotal, receipt.total, receipt.tax) == (4.0, 4.24, 0.24)


def test_stacked_labels_take_the_values_below_them_in_order():
    receipt = parse_receipt_text(
        lines("DINER", "Burger", "17.99", "SubTotal", "$17.99", "SalesTax", "OrderTotal", "$1.39", "$19.38")
    )
    assert (receipt.subtotal, receipt.tax, receipt.total) == (17.99, 1.39, 19.38)


def test_a_rounding_adjustment_never_takes_a_whole_amount():
    receipt = parse_receipt_text(
        lines(
            "SHOP",
            "Pen 79.50",
            "ROUNDING ADJUSTMENT:",
            "TOTAL AMT PAYABLE:",
            "79.50",
            "PAID AMOUNT:",
            "100.00",
            "CHANGE:",
            "20.50",
        )
    )
    assert receipt.total == 79.5


def test_the_rounded_total_is_taken_when_the_receipt_shows_it():
    receipt = parse_receipt_text(
        lines(
            "SHOP",
            "Lamp 60.31",
            "TOTAL AMT RM",
            "60.31",
            "ROUNDING ADJ",
            "-0.01",
            "RM",
            "60.30",
            "CASH RM",
            "70.30",
            "CHANGE RM",
            "10.00",
        )
    )
    assert receipt.total == 60.3


def test_the_total_of_a_gst_summary_table_is_ignored():
    receipt = parse_receipt_text(
        lines(
            "SHOP",
            "Widget 106.10",
            "SUB TOTAL 106.10",
            "GST 6.37",
            "TOTAL 112.47",
            "GST SUMMARY",
            "TAX CODE",
            "TOTAL : 106.10 6.37",
        )
    )
    assert receipt.total == 112.47


def test_a_total_is_preferred_when_it_equals_cash_minus_change():
    receipt = parse_receipt_text(
        lines(
            "SHOP", "Cable 327.00", "TOTAL SALES :", "327.00", "TOTAL :", "0.00", "CASH :", "327.00", "CHANGE :", "0.00"
        )
    )
    assert receipt.total == 327.0


def test_a_total_is_read_from_decimal_comma_receipts():
    receipt = parse_receipt_text(lines("PIZZERIA", "2 KRIK 5,00", "1 LEFFE 3,50", "TOTAL TTC: 8,50"))
    assert receipt.total == 8.5
    assert receipt.currency is None


def test_ocr_noise_in_the_total_is_repaired():
    receipt = parse_receipt_text(lines("SHOP", "Soap 5.OO", "T0TAL S.00"))
    assert receipt.total == 5.0


def test_taxes_printed_separately_are_added_when_that_explains_the_total():
    receipt = parse_receipt_text(
        lines("CAFE", "Poutine 16.50", "SOUS-TOTAL 16.50", "TPS 0.83", "TVQ 1.65", "TOTAL 18.98")
    )
    assert receipt.tax == 2.48
    assert receipt.issues == []


def test_a_refund_keeps_its_negative_total():
    receipt = parse_receipt_text(lines("FIVE GUYS", "*****REFUND*****", "LTL FRY (3.19)", "Total: ($3.19)"))
    assert receipt.total == -3.19


def test_a_total_whose_decimal_point_ocr_dropped_is_read_when_subtotal_and_tax_make_it() -> None:
    text = "SHOP\nTAPE 2 3.50 7.00\nSUB-TOTAL 6.60\n6ST 0.40\nTOTAL 700\nCASH 700"
    receipt = parse_receipt_text(text)
    assert (receipt.subtotal, receipt.tax, receipt.total) == (6.6, 0.4, 7.0)
    # Nothing makes 7.77 from the subtotal and tax: the integer stays unread, as before.
    unsure = parse_receipt_text(text.replace("TOTAL 700", "TOTAL 777"))
    assert unsure.total is None and "no total found" in unsure.issues


def test_a_total_printed_without_cents_on_its_label_line_is_taken_when_subtotal_and_tax_make_it():
    receipt = parse_receipt_text(
        lines(
            "CANTEEN",
            "BTR UTTAPPA 54.28",
            "SWEET LASSI 44.76",
            "Sub Total 99.04",
            "SGST 2.48",
            "CGST 2.48",
            "2/2 Total: 104",
            "Thank You",
        )
    )
    assert receipt.total == 104.0
    # The same whole number that subtotal and tax do not make is not a total.
    other = parse_receipt_text(lines("CANTEEN", "LASSI 44.76", "Sub Total 44.76", "GST 2.48", "Total: 104"))
    assert other.total != 104.0


def test_a_total_that_adds_up_beats_a_stronger_label_whose_amount_does_not():
    # OCR read the balance due's 28.65 as 23.65; subtotal + tax say which one is the total.
    receipt = parse_receipt_text(
        lines("DINER", "Burger 9.29", "Shake 16.87", "Subtotal 26.16", "Tax 2.49", "Total 28.65", "Balance Due 23.65")
    )
    assert receipt.total == 28.65


def test_with_no_total_label_read_the_largest_amount_printed_twice_is_the_total():
    receipt = parse_receipt_text(
        lines("TRADER JOE'S", "BANANAS 1.14", "MILK 2.89", "STAE T A 2 $1.48", "TCI TA L $5.51", "D E B T T $5.51")
    )
    assert receipt.total == 5.51
    # Printed once, an amount is not taken for the total.
    once = parse_receipt_text(lines("SHOP", "BANANAS 1.14", "MILK 2.89", "TCI TA L $4.03"))
    assert once.total is None


def test_a_total_whose_label_ocr_garbled_is_the_line_that_ends_in_subtotal_plus_tax():
    receipt = parse_receipt_text(lines("MR LUCKY'S", "soft drink 2.99", "Subtotal 21.52", "Tax 1.74", "Tordl 23.26"))
    assert receipt.total == 23.26
    other = parse_receipt_text(lines("MR LUCKY'S", "soft drink 2.99", "Subtotal 21.52", "Tax 1.74", "Tordl 23.62"))
    assert other.total != 23.62  # not what subtotal + tax make: not taken


def test_with_no_total_read_one_amount_tendered_without_change_is_the_total():
    receipt = parse_receipt_text(
        lines("CAFE", "KESARI BATH 85.00", "BL . TOT ( ROUNDED )", "CASH 1039.00", "KOT-N08860")
    )
    assert receipt.total == 1039.0
    # With change printed, what was tendered is not what was charged.
    change = parse_receipt_text(lines("CAFE", "KESARI BATH 85.00", "BL . TOT", "CASH 1039.00", "CHANGE 0.50"))
    assert change.total != 1039.0
