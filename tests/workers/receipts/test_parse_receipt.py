"""The whole receipt: header, currency, consistency and the registered tool."""

from __future__ import annotations

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import ToolError
from orchestrator.rules.models import ParsedReceipt
from orchestrator.rules.receipt.parse import parse_receipt_text
from orchestrator.toolbox import default_registry
from orchestrator.workers.receipts.tools import line_item_parser

pytestmark = pytest.mark.anyio

MALAYSIAN = """TAN WOON YANN
INDAH GIFT & HOME DECO SDN BHD (123456-X)
27,JALAN DEDAP 13,
TAMAN JOHOR JAYA,
81100 JOHOR BAHRU,JOHOR.
TEL:07-3507405
RECEIPT
19/10/2018 20:49:59
DESC/ITEM
QTY
PRICE
AMT(RM)
TABLE LAMP
1
55.90
55.90
TOTAL AMT RM
55.90
CASH RM
60.00
CHANGE RM
4.10
"""

CONSISTENT = """CORNER CAFE
12 Main Street, Springfield
12 Jan 2018
2 x Coffee 3.50 7.00
Muffin 2.75
Subtotal 9.75
Tax 0.78
TOTAL $10.53
"""


def test_merchant_address_date_and_currency_are_read_from_the_header():
    receipt = parse_receipt_text(MALAYSIAN)
    assert receipt.merchant == "INDAH GIFT & HOME DECO SDN BHD"
    assert receipt.address == "27,JALAN DEDAP 13, TAMAN JOHOR JAYA, 81100 JOHOR BAHRU,JOHOR."
    assert (receipt.date, receipt.currency, receipt.total) == ("2018-10-19", "MYR", 55.9)
    assert [(i.name, i.amount) for i in receipt.items] == [("TABLE LAMP", 55.9)]


@pytest.mark.parametrize(
    ("marks", "currency"),
    [
        ("TOTAL $5.00", "USD"),
        ("TOTAL RM5.00", "MYR"),
        ("TOTAL €5,00", "EUR"),
        ("TOTAL £5.00", "GBP"),
        ("TOTAL 5.00 EUR", "EUR"),
        ("SINGAPORE 819642\nTOTAL $5.00", "SGD"),
        ("HST #R105216170\nTOTAL $5.00", "CAD"),
        ("TOTAL 5.00", None),
    ],
)
def test_the_currency_is_told_from_marks_and_context(marks: str, currency: str | None):
    assert parse_receipt_text(f"SHOP\n{marks}").currency == currency


def test_a_us_receipt_reads_ambiguous_dates_month_first():
    assert parse_receipt_text("DINER\n03/04/2018\nTOTAL $5.00").date == "2018-03-04"
    assert parse_receipt_text("KEDAI\n03/04/2018\nTOTAL RM5.00").date == "2018-04-03"


def test_numbers_that_agree_give_full_confidence_and_no_issues():
    receipt = parse_receipt_text(CONSISTENT)
    assert (receipt.subtotal, receipt.tax, receipt.total) == (9.75, 0.78, 10.53)
    assert receipt.confidence == 1.0
    assert receipt.issues == []


def test_items_that_do_not_add_up_lower_confidence_and_say_why():
    receipt = parse_receipt_text(CONSISTENT.replace("Muffin 2.75", "Muffin 3.75"))
    assert receipt.confidence < 1.0
    assert receipt.issues == ["items add up to 10.75, which does not match the subtotal 9.75"]


def test_a_subtotal_and_tax_that_miss_the_total_are_reported():
    # Two digits away from what the subtotal and the items say (one digit away would be read as a misread).
    receipt = parse_receipt_text(CONSISTENT.replace("TOTAL $10.53", "TOTAL $15.63"))
    assert receipt.total == 15.63
    assert receipt.issues == ["subtotal 9.75 + tax 0.78 = 10.53, which does not match the total 15.63"]
    assert receipt.confidence < 1.0


def test_tax_included_in_prices_is_consistent():
    receipt = parse_receipt_text("SHOP\nTea 2.00\nCake 3.00\nTOTAL 5.00\nIncl. VAT 20% 0.83")
    assert receipt.tax == 0.83
    assert receipt.issues == []


def test_service_charge_and_rounding_explain_the_total():
    receipt = parse_receipt_text(
        "BISTRO\nSteak 50.00\nSUBTOTAL 50.00\nSERVICE CHARGE 10% 5.00\nGST 6% 3.30\nROUNDING -0.05\nTOTAL 58.25"
    )
    assert receipt.total == 58.25
    assert receipt.issues == []


def test_a_receipt_without_a_total_has_low_confidence_and_an_issue():
    receipt = parse_receipt_text("SHOP\nApples 2.00\nThank you")
    assert receipt.total is None
    assert "no total found" in receipt.issues
    assert receipt.confidence < 0.5


def test_a_receipt_with_only_a_subtotal_says_the_subtotal_stands_in_for_the_total():
    receipt = parse_receipt_text("KIOSK\nIce Tea 4.30\nSUBTOTAL 4.30\nRM CASH 10.000\nTHANK YOU")
    assert receipt.total == 4.3
    assert receipt.issues == ["no total printed; the subtotal is taken as the total"]
    assert receipt.confidence < 1.0


def test_empty_text_gives_an_empty_receipt_with_zero_confidence():
    receipt = parse_receipt_text("  \n ")
    assert receipt == ParsedReceipt(confidence=0.0, issues=["empty text: nothing to parse"])


async def test_the_tool_rejects_empty_and_non_string_text_with_a_clear_error():
    with pytest.raises(ToolError, match="text is empty"):
        await line_item_parser("   ")
    with pytest.raises(ToolError, match="must be a string, got int"):
        await line_item_parser(42)  # type: ignore[arg-type]


async def test_the_registered_tool_returns_json_and_reports_the_keyword_mode():
    context = StepContext(run_id="r1", step_id="parse")
    token = step_reporter.set(context)
    try:
        out = await default_registry(plugins=False).get("line_item_parser").invoke({"text": CONSISTENT})
    finally:
        step_reporter.reset(token)
    assert out["total"] == 10.53
    assert out["mode"] == "keyword"
    assert context.modes == ["keyword"]


async def test_the_registered_tool_refuses_a_missing_text_argument():
    with pytest.raises(ToolError, match="invalid arguments"):
        await default_registry(plugins=False).get("line_item_parser").invoke({})


def test_the_tool_spec_describes_its_input_and_output():
    spec = default_registry(plugins=False).get("line_item_parser").spec
    assert spec.kind == "function"
    assert spec.input_schema["required"] == ["text"]
    assert spec.input_schema["properties"]["text"]["description"].startswith("The receipt's text")
    assert {"merchant", "address", "date", "total", "items", "confidence", "issues"} <= set(
        spec.output_schema["properties"]
    )
