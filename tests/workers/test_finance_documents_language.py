from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ToolError
from orchestrator.workers.documents import (
    build_table,
    count_and_rank,
    extract_section,
    format_report,
    list_files,
    load_records,
)
from orchestrator.workers.finance import calculate_tax, calculate_totals, detect_duplicates
from orchestrator.workers.language import classify, extract, sentiment, summarize


def test_totals_sum_items_per_category_and_use_the_given_tax() -> None:
    items = [
        {"amount": 3.5, "category": "beverage"},
        {"amount": 10.0, "category": "food"},
        {"amount": -1.0, "category": "food"},
    ]
    totals = calculate_totals(items, tax=0.75)
    assert (totals.item_count, totals.subtotal, totals.tax, totals.total) == (3, 12.5, 0.75, 13.25)
    assert totals.by_category == {"food": 9.0, "beverage": 3.5}
    assert calculate_totals([10, 20], tax_rate=0.1).total == 33.0


def test_totals_reject_items_without_amounts_naming_the_item() -> None:
    with pytest.raises(ToolError, match=r"items\[1\]: expected a number"):
        calculate_totals([1.0, {"name": "x"}])


def test_tax_splits_inclusive_and_exclusive_amounts() -> None:
    assert calculate_tax(100, 0.2).model_dump() == {"net": 100, "tax": 20, "gross": 120, "rate": 0.2}
    assert calculate_tax(120, 0.2, inclusive=True).net == 100
    with pytest.raises(ToolError, match="fraction"):
        calculate_tax(100, 20)


def test_duplicates_are_found_by_identity_and_by_near_identical_content() -> None:
    a = {"merchant": "ACME Corp", "date": "2024-02-07", "total": 1250.0, "items": [{"name": "Widget", "amount": 1250}]}
    b = {"merchant": "ACME CORP.", "date": "2024-02-07", "total": 1250.0, "items": [{"name": "Widget", "amount": 1250}]}
    c = {"merchant": "Other", "date": "2024-02-07", "total": 99.0, "items": []}
    d = {
        "merchant": "ACME Corporation",
        "date": "2024-02-07",
        "total": 1250.0,
        "items": [{"name": "Widget", "amount": 1250}],
    }
    report = detect_duplicates([a, c, b, d], names=["a.png", "c.png", "b.png", "d.png"])
    assert report.duplicates == 2
    [group] = report.groups
    assert group.names == ["a.png", "b.png", "d.png"]
    assert detect_duplicates([a, c]).groups == []


def test_records_load_from_jsonl_with_positioned_errors(tmp_path: Path) -> None:
    good = tmp_path / "f.jsonl"
    good.write_text('{"id": "1", "text": "great"}\n\n{"text": "bad"}\n')
    assert [(r.id, r.text) for r in load_records(str(good))] == [("1", "great"), ("3", "bad")]
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"text": "ok"}\n{"text": oops}\n')
    with pytest.raises(ToolError, match=r"b\.jsonl:2:10: invalid JSON"):
        load_records(str(broken))
    with pytest.raises(ToolError, match="no such file"):
        load_records(str(tmp_path / "missing.jsonl"))


def test_sections_are_cut_at_the_next_heading() -> None:
    text = (
        "Title\n\nAbstract\nWe study X.\n\n2. Methods\nWe ran a randomized trial.\nWith 200 people."
        "\n\nResults\nIt worked."
    )
    assert extract_section(text, ["methods"]) == "We ran a randomized trial.\nWith 200 people."
    assert extract_section(text, ["discussion"]) == ""


def test_rank_counts_fields_and_flattens_lists() -> None:
    ranked = count_and_rank([{"entities": ["delivery", "price"]}, {"entities": ["delivery"]}], field="entities")
    assert [(r.value, r.count) for r in ranked] == [("delivery", 2), ("price", 1)]


def test_table_zips_columns_and_rejects_uneven_ones() -> None:
    assert build_table({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(ToolError, match="differ in length"):
        build_table({"a": [1], "b": []})


def test_report_renders_text_and_tables() -> None:
    out = format_report("Spent 9", title="R", data={"items": [{"name": "tea", "amount": 3.5}]})
    assert out.startswith("# R\n\nSpent 9") and "| name | amount |" in out and "| tea | 3.50 |" in out


def test_files_are_listed_from_globs_and_missing_sources_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.txt").write_text("y")
    assert list_files(str(tmp_path / "*.png")) == [str(tmp_path / "a.png")]
    with pytest.raises(ToolError, match="no such file or folder"):
        list_files(str(tmp_path / "nope"))


def test_keyword_sentiment_handles_negation() -> None:
    assert sentiment("Delivery was fast and the staff were friendly").label == "positive"
    assert sentiment("The app crashes and support was rude").label == "negative"
    assert sentiment("The food was not good").label == "negative"
    assert sentiment("I ordered on Tuesday").label == "neutral"


def test_keyword_classification_uses_label_words_and_synonyms() -> None:
    labels = ["randomized controlled trial", "survey", "simulation"]
    assert classify("Participants were randomised to a placebo or a control group.", labels).label == labels[0]
    assert classify("We sent a questionnaire; 400 respondents answered on a Likert scale.", labels).label == "survey"
    assert classify("Nothing relevant here.", labels).label is None


def test_extraction_finds_known_issues_and_amounts() -> None:
    found = extract("My parcel arrived late and I was charged $12.99 twice; still waiting for a refund.")
    assert {"delivery", "refunds and returns", "price"} <= set(found.entities) and "$12.99" in found.entities
    assert summarize("One. Two! Three?", sentences=2).summary == "One. Two!"


@pytest.mark.slow
def test_run_demo_runs_every_example_plan_as_a_user_would() -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "run_demo.py"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plans = sorted(p.name for p in (repo / "examples").glob("*.json"))
    for name in plans:
        assert f"=== examples/{name} ===" in proc.stdout
    assert proc.stdout.count("run succeeded") == len(plans)
    assert "Traceback" not in proc.stderr
    assert json.dumps  # the demo's outputs are rendered for people, not JSON
