"""Money amounts as receipts print them."""

from __future__ import annotations

import pytest

from orchestrator.rules.receipt._amounts import find_amounts, minor_unit, parse_amount


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12.50", 12.5),
        ("$12.50", 12.5),
        ("RM 19.20", 19.2),
        ("RM9.00", 9.0),
        ("€3,50", 3.5),
        ("£1,234.56", 1234.56),
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("EUR11,50", 11.5),
        ("U$317.14", 317.14),
        ("-1.00", -1.0),
        ("1.00-", -1.0),
        ("(1.00)", -1.0),
        ("-RM0.01", -0.01),
        ("($3.13)", -3.13),
    ],
)
def test_an_amount_is_read_with_any_sign_separator_or_currency(text: str, value: float):
    assert parse_amount(text) == value


@pytest.mark.parametrize(("text", "value"), [("5.OO", 5.0), ("S.00", 5.0), ("l2.50", 12.5), ("RM1O.00", 10.0)])
def test_ocr_letters_inside_a_number_are_read_as_digits(text: str, value: float):
    assert parse_amount(text) == value


def test_a_tax_code_after_an_amount_does_not_hide_it():
    assert [a.value for a in find_amounts("55.00S") if a.is_money] == [55.0]
    assert [a.value for a in find_amounts("6,50TI") if a.is_money] == [6.5]


def test_a_count_a_percentage_and_a_unit_price_are_not_money():
    amounts = {a.value: a for a in find_amounts("2 x 0.7500  6.00%  3.00")}
    assert not amounts[2.0].is_money
    assert not amounts[0.75].is_money
    assert amounts[6.0].percent and not amounts[6.0].is_money
    assert amounts[3.0].is_money


def test_an_amount_glued_to_a_label_is_found():
    assert [a.value for a in find_amounts("#SUBTOTAL28.00") if a.is_money] == [28.0]


def test_a_receipt_priced_in_three_decimals_is_recognised():
    assert minor_unit(["5.200", "1.000", "2.500", "19.729", "Total 19.729"]) == 3
    assert minor_unit(["2.50", "Total 12.50", "10.875 gal"]) == 2
    assert minor_unit(["TOTAL 12312"], currency="XPF") == 0


def test_a_currency_mark_before_the_next_amount_is_not_a_trailing_mark():
    code, price = find_amounts("MEAT FT2 $3.49")
    assert (code.value, code.currency, price.value, price.currency) == (2.0, None, 3.49, "$")
    (trailing,) = find_amounts("12.00 $")
    assert (trailing.value, trailing.currency) == (12.0, "$")


def test_an_s_before_the_digits_of_an_amount_is_a_dollar_sign():
    (amount,) = find_amounts("Total S3.21")
    assert (amount.value, amount.currency) == (3.21, "$")
    (five,) = find_amounts("S.00")  # no digit after the S: it stands for a 5
    assert five.value == 5.0


def test_thousands_groups_and_decimals_never_share_a_separator():
    assert find_amounts("Total => 7.020.44 piece(s)") == []  # two amounts run together: neither is read
    assert [a.value for a in find_amounts("1.234,56 1,234.56 1.234.567 1,234,567.89")] == [
        1234.56,
        1234.56,
        1234567.0,
        1234567.89,
    ]
