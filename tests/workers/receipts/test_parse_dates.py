"""Dates in the many ways receipts print them."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.rules.receipt._dates import choose_date, date_readings, find_dates, resolve_dayfirst


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19/10/2018", date(2018, 10, 19)),
        ("2018-01-12", date(2018, 1, 12)),
        ("2018/02/22", date(2018, 2, 22)),
        ("23-01-2019 13:14:15 PM", date(2019, 1, 23)),
        ("12 Jan 2018", date(2018, 1, 12)),
        ("15 MAR 18", date(2018, 3, 15)),
        ("05-JAN-2017", date(2017, 1, 5)),
        ("Jan 12, 2018", date(2018, 1, 12)),
        ("Jul/15/2017", date(2017, 7, 15)),
        ("Feb11.2012", date(2012, 2, 11)),
        ("04NOV'17", date(2017, 11, 4)),
        ("JUN03'14", date(2014, 6, 3)),
        ("Friday2Mar2018", date(2018, 3, 2)),
        ("09:13 AM, 21 MARCH, 2018", date(2018, 3, 21)),
        ("4/4/20127:33AM", date(2012, 4, 4)),
        ("DATE: 10 OKT 2017", date(2017, 10, 10)),
        ("27/ 03/2018 No.:CS-20242", date(2018, 3, 27)),
        ("Order No. 100021911/03/201806:20 PM", date(2018, 3, 11)),
        ("Sale#41297236993 09/13/15,11:33AM", date(2015, 9, 13)),
        ("Date 06/01/1812.17: 26 PM", date(2018, 1, 6)),
        ("Served by: r0jan 27/02/2018 15:32:47", date(2018, 2, 27)),
        # OCR damage: a time run into the year without its colons, a space beside a separator, no slashes.
        ("CB# 389720 17/01/201842153", date(2018, 1, 17)),
        ("REG 16-04 -201814:51", date(2018, 4, 16)),
        ("27032018 No:CS-20243", date(2018, 3, 27)),
        ("POSTED 20180327", date(2018, 3, 27)),
    ],
)
def test_a_date_is_found_in_any_common_format(text: str, expected: date):
    assert [m.date for m in find_dates(text)] == [expected]


def test_an_ambiguous_numeric_date_keeps_both_readings_in_the_preferred_order():
    (match,) = find_dates("12-01-18", dayfirst=True)
    assert match.readings == (date(2018, 1, 12), date(2018, 12, 1))
    (match,) = find_dates("12-01-18", dayfirst=False)
    assert match.readings == (date(2018, 12, 1), date(2018, 1, 12))
    assert date_readings("03/04/2018") == {date(2018, 4, 3), date(2018, 3, 4)}


@pytest.mark.parametrize(
    "text", ["TEL: 03-7887 2622", "2 Mar 10.00", "MAC 1 12.50", "10:47:33", "04/11", "#01-13/14", "0Z02 - 12/48"]
)
def test_phone_numbers_prices_and_times_are_not_dates(text: str):
    assert find_dates(text) == []


def test_one_unambiguous_date_decides_the_convention_for_the_receipt():
    assert resolve_dayfirst(["03/04/2018", "PRINTED 19/04/2018"], default=False) is True
    assert resolve_dayfirst(["03/04/2018", "PRINTED 10/26/2018"], default=True) is False
    assert resolve_dayfirst(["03/04/2018"], default=False) is False


def test_the_purchase_date_is_preferred_over_an_expiry_date():
    lines = ["CARD EXP 01/01/2030", "DATE: 12/02/2018", "THANK YOU 13/02/2018"]
    assert choose_date(lines, dayfirst=True) == date(2018, 2, 12)


def test_an_iso_date_with_the_time_run_onto_its_day_is_read() -> None:
    assert [m.date.isoformat() for m in find_dates("Date: 2016/05/0114:11 :20")] == ["2016-05-01"]
    assert find_dates("2016/05/0114") == []  # no time follows: not a date


def test_a_date_whose_first_slash_ocr_read_as_a_comma_is_read():
    assert date_readings("Server: Marcos 02,22/2014") == {date(2014, 2, 22)}
    assert date_readings("Tip 2,22/2") == set()  # no year: not a date


@pytest.mark.parametrize("text", ["Tel 12345678", "INV 20242113", "Ref 99999999", "Card ****1234 00110022"])
def test_eight_digits_that_make_no_date_of_this_century_are_not_a_date(text: str):
    assert find_dates(text) == []


def test_eight_digits_are_a_date_only_when_the_text_has_no_other():
    assert [m.date for m in find_dates("Member 27032018\nDate: 01/04/2018")] == [date(2018, 4, 1)]
