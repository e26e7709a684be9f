"""Receipt accuracy evaluation: comparison rules on small folders, and the targets on the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.evaluation import ReceiptEvalReport, evaluate_receipts
from orchestrator.evaluation.receipts import expected_wildreceipt_total, normalize_text
from orchestrator.rules.models import LineItem, OcrLine, OcrResult, ParsedReceipt
from orchestrator.rules.receipt.parse import parse_receipt_text

pytestmark = pytest.mark.anyio


def write(folder: Path, receipt: str, truth: dict[str, object], text: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{receipt}.json").write_text(json.dumps(truth), encoding="utf-8")
    (folder / f"{receipt}.txt").write_text(text, encoding="utf-8")


def always(parsed: ParsedReceipt):
    def parser(text: str, lines: object = None) -> ParsedReceipt:
        return parsed

    return parser


async def test_sroie_fields_are_compared_normalised(tmp_path: Path):
    truth = {"company": "S.H.H. MOTOR SDN. BHD.", "date": "23-01-2019", "address": "NO. 3, JALAN X,", "total": "RM9.00"}
    write(tmp_path, "a", truth)
    parsed = ParsedReceipt(merchant="shh motor sdn bhd", date="2019-01-23", address="NO.3 JALAN X", total=9.0)
    report = await evaluate_receipts(tmp_path, parser=always(parsed))
    assert report.layout == "sroie"
    assert report.n == 1
    assert report.fields == {"address": 1.0, "company": 1.0, "date": 1.0, "total": 1.0}
    assert report.misses == []


async def test_a_wrong_field_is_listed_as_a_miss_with_what_was_expected(tmp_path: Path):
    write(tmp_path, "a", {"company": "ACME", "date": "25/12/2018", "address": "X", "total": "10.00"})
    parsed = ParsedReceipt(merchant="ACME", date="2018-12-24", address="X", total=10.5)
    report = await evaluate_receipts(tmp_path, parser=always(parsed))
    assert report.fields["date"] == 0.0 and report.fields["total"] == 0.0
    assert {(m.receipt, m.field, m.expected, m.got) for m in report.misses} == {
        ("a", "date", "25/12/2018", "2018-12-24"),
        ("a", "total", "10.00", "10.50"),
    }


async def test_an_ambiguous_printed_date_matches_either_reading(tmp_path: Path):
    write(tmp_path, "a", {"company": "A", "date": "03/04/2018", "address": "X", "total": "1.00"})
    for iso in ("2018-04-03", "2018-03-04"):
        report = await evaluate_receipts(tmp_path, parser=always(ParsedReceipt(date=iso)))
        assert report.fields["date"] == 1.0


def wild(**fields: list[str]) -> dict[str, object]:
    return {"fields": fields, "annotations": []}


async def test_wildreceipt_items_are_scored_as_multisets(tmp_path: Path):
    truth = wild(
        Store_name_value=["KOREAN", "RESTAURANT"],
        Date_value=["5/19/2017"],
        Total_value=["$26.09"],
        Prod_item_value=["Bibim Bap", "Coke", "Coke"],
        Prod_price_value=["$20.00", "3.00", "3.09"],
    )
    write(tmp_path, "w", truth)
    items = [
        LineItem(name="BIBIMBAP", amount=20.0),
        LineItem(name="coke", amount=3.0),
        LineItem(name="Tip", amount=1.0),
    ]
    parsed = ParsedReceipt(merchant="Korean Restaurant", date="2017-05-19", total=26.09, items=items)
    report = await evaluate_receipts(tmp_path, parser=always(parsed))
    assert report.layout == "wildreceipt"
    assert report.fields["merchant"] == 1.0
    assert report.fields["item_name_f1"] == pytest.approx(2 / 3, abs=1e-4)  # 2 of 3 on both sides
    assert report.details["item_name_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert report.fields["item_price_f1"] == pytest.approx(2 / 3, abs=1e-4)


def test_the_wildreceipt_total_is_the_box_equal_to_subtotal_plus_tax_else_the_most_frequent():
    tendered_also_labelled = {
        "Total_value": ["354.00", "504.00"],
        "Subtotal_value": ["300.00"],
        "Tax_value": ["27.00", "27.00"],
    }
    assert expected_wildreceipt_total(tendered_also_labelled) == 354.0
    subtotal_mislabelled = {"Total_value": ["#SUBTOTAL28.00", "30,80", "30.80"], "Subtotal_value": ["28.00"]}
    assert expected_wildreceipt_total(subtotal_mislabelled) == 30.8
    assert expected_wildreceipt_total({"Total_value": ["9.00", "12.00"]}) == 12.0
    assert expected_wildreceipt_total({"Total_value": []}) is None


async def test_fields_without_ground_truth_are_not_scored(tmp_path: Path):
    write(tmp_path, "w", wild(Store_name_value=["SHOP"], Date_value=["04/11"], Total_value=["1.00"]))
    report = await evaluate_receipts(tmp_path, parser=always(ParsedReceipt(merchant="SHOP", total=1.0)))
    assert report.fields == {"merchant": 1.0, "total": 1.0}


async def test_an_ocr_function_reads_the_image_instead_of_the_text(tmp_path: Path):
    write(tmp_path, "a", {"company": "ACME", "date": "", "address": "", "total": "5.00"}, text="not this")
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8")
    seen: list[Path] = []

    async def ocr(path: Path) -> str:
        seen.append(path)
        return "ACME\nTOTAL 5.00"

    report = await evaluate_receipts(tmp_path, read_text=ocr)
    assert seen == [tmp_path / "a.jpg"]
    assert report.fields == {"company": 1.0, "total": 1.0}


async def test_a_whole_ocr_result_gives_the_parser_the_lines_boxes_too(tmp_path: Path):
    write(tmp_path, "a", {"company": "ACME", "date": "", "address": "", "total": "5.00"}, text="not this")
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8")
    lines = [
        OcrLine(text="ACME", confidence=0.9, box=[10, 10, 60, 30]),
        OcrLine(text="TOTAL 5.00", confidence=0.9, box=[10, 40, 90, 60]),
    ]
    given: list[object] = []

    async def ocr(path: Path) -> OcrResult:
        return OcrResult(text="ACME\nTOTAL 5.00", lines=lines, backend="test", source=str(path))

    def parser(text: str, lines: object = None) -> ParsedReceipt:
        given.append(lines)
        return parse_receipt_text(text, lines)  # type: ignore[arg-type]

    report = await evaluate_receipts(tmp_path, read_text=ocr, parser=parser)
    assert given == [lines]
    assert report.fields == {"company": 1.0, "total": 1.0}


async def test_limit_and_ids_choose_which_receipts_are_scored(tmp_path: Path):
    for receipt in ("a", "b", "c"):
        write(tmp_path, receipt, {"company": "X", "date": "", "address": "", "total": "1.00"}, text="X\nTOTAL 1.00")
    (tmp_path / "c.box.json").write_text("{}", encoding="utf-8")
    assert (await evaluate_receipts(tmp_path, limit=2)).n == 2
    assert (await evaluate_receipts(tmp_path, ids=["c"])).n == 1
    assert (await evaluate_receipts(tmp_path)).n == 3


async def test_a_missing_folder_is_reported_clearly(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="receipt folder not found"):
        await evaluate_receipts(tmp_path / "nope")


def test_the_report_dumps_to_plain_data():
    report = ReceiptEvalReport(layout="sroie", n=1, fields={"total": 1.0})
    assert report.model_dump() == {
        "layout": "sroie",
        "n": 1,
        "fields": {"total": 1.0},
        "counts": {},
        "details": {},
        "misses": [],
    }
    assert normalize_text(" No. 3, Jalan  X ") == "NO3JALANX"


async def test_sroie_accuracy_meets_the_targets(shared_receipts: Path):
    report = await evaluate_receipts(shared_receipts / "sroie")
    assert report.layout == "sroie"
    assert report.n == 100
    assert report.fields["total"] >= 0.90, report.misses
    assert report.fields["date"] >= 0.95, report.misses
    assert report.fields["company"] >= 0.80, report.misses
    assert report.fields["address"] >= 0.70, report.misses


async def test_wildreceipt_accuracy_meets_the_targets(shared_receipts: Path):
    report = await evaluate_receipts(shared_receipts / "wildreceipt")
    assert report.layout == "wildreceipt"
    assert report.n == 100
    assert report.fields["total"] >= 0.85, report.misses
    assert report.fields["date"] >= 0.90, report.misses
    assert report.fields["item_name_f1"] >= 0.70, report.misses
