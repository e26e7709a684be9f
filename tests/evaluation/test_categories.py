"""Category accuracy evaluation: reading labelled files, splitting them, scoring back-ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ConfigurationError, InputError
from orchestrator.evaluation.categories import evaluate_categories, read_labelled, score, split_labelled
from orchestrator.small_model_worker.cascade import Prediction


def write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"name": n, "category": c}) + "\n" for n, c in pairs))
    return path


def test_labelled_names_are_read_from_json_lines_and_from_csv_with_any_column_names(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"name": "Latte", "category": "beverage"}\n\n{"name": " ", "category": "food"}\n')
    assert read_labelled(jsonl) == [("Latte", "beverage")]
    csv = tmp_path / "b.csv"
    csv.write_text('product_id,product_name,department\n1,"Soap, Lavender",personal care\n2,Kale,produce\n')
    assert read_labelled(csv, name_col="product_name", label_col="department") == [
        ("Soap, Lavender", "personal care"),
        ("Kale", "produce"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"name": "x"', "bad.jsonl:1:13: not a JSON object"),
        ("keys.jsonl", '{"title": "x", "category": "y"}', "keys.jsonl:1: expected an object with 'name'"),
        ("cols.csv", "title,category\nx,y\n", "no column 'name'"),
    ],
)
def test_a_malformed_labelled_file_is_an_input_error_that_says_where(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_labelled(path)
    with pytest.raises(InputError, match="not found"):
        read_labelled(tmp_path / "missing.jsonl")


def test_a_split_is_stratified_disjoint_complete_and_repeatable(tmp_path: Path) -> None:
    pairs = [(f"item {label} {i}", label) for label, count in (("a", 50), ("b", 20), ("c", 2)) for i in range(count)]
    source = write_jsonl(tmp_path / "all.jsonl", pairs)
    train_path, test_path = split_labelled(source, tmp_path / "s1", test_fraction=0.2, seed=3)
    train, test = read_labelled(train_path), read_labelled(test_path)
    assert sorted(train + test) == sorted(pairs)
    assert not {n for n, _ in train} & {n for n, _ in test}
    counts = {label: sum(1 for _, got in test if got == label) for label in "abc"}
    assert counts == {"a": 10, "b": 4, "c": 1}
    again = split_labelled(source, tmp_path / "s2", test_fraction=0.2, seed=3)
    assert read_labelled(again[1]) == test
    other = split_labelled(source, tmp_path / "s3", test_fraction=0.2, seed=4)
    assert read_labelled(other[1]) != test
    with pytest.raises(ConfigurationError):
        split_labelled(source, tmp_path / "bad", test_fraction=1.0)


def test_the_report_scores_overall_per_tier_and_lists_the_most_confused_pairs() -> None:
    pairs = [("a", "food"), ("b", "food"), ("c", "beverage"), ("d", "beverage"), ("e", "fuel")]
    predictions = [
        Prediction("food", 0.9, "keyword"),
        Prediction("beverage", 0.4, "embedded"),
        Prediction("beverage", 0.9, "keyword"),
        Prediction("food", 0.5, "embedded"),
        Prediction("beverage", 0.5, "embedded"),
    ]
    report = score(pairs, predictions)
    assert report.model_dump() == {
        "n": 5,
        "accuracy": 0.4,
        "tiers": {"embedded": {"n": 3, "accuracy": 0.0}, "keyword": {"n": 2, "accuracy": 1.0}},
        "confusions": [
            {"expected": "beverage", "got": "food", "count": 1},
            {"expected": "food", "got": "beverage", "count": 1},
            {"expected": "fuel", "got": "beverage", "count": 1},
        ],
    }


@pytest.mark.anyio
async def test_the_keyword_back_end_uses_the_expense_rules_without_examples(tmp_path: Path) -> None:
    test = write_jsonl(
        tmp_path / "test.jsonl",
        [("Heineken 6pk", "alcohol"), ("Iced Latte", "beverage"), ("Diesel", "fuel"), ("Zxqv", "alcohol")],
    )
    report = await evaluate_categories(test, backend="keywords")
    assert (report.n, report.accuracy) == (4, 0.75)
    assert report.tiers["keyword"].n == 4
    assert [(c.expected, c.got) for c in report.confusions] == [("alcohol", "fuel")]  # no match: the last label


@pytest.mark.anyio
async def test_with_examples_the_keyword_back_end_learns_its_rules_from_them(tmp_path: Path) -> None:
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [(f"{kind} {animal} food {i}", "pets") for i, (kind, animal) in enumerate([("dry", "dog"), ("wet", "cat")] * 3)]
        + [(f"organic {veg} {i}", "produce") for i, veg in enumerate(["kale", "apples", "kale", "apples", "leeks"])],
    )
    test = write_jsonl(tmp_path / "test.jsonl", [("senior dog food", "pets"), ("organic kale salad", "produce")])
    report = await evaluate_categories(test, examples=train, backend="keywords")
    assert report.accuracy == 1.0


@pytest.mark.anyio
async def test_an_unknown_back_end_is_a_configuration_error(tmp_path: Path) -> None:
    test = write_jsonl(tmp_path / "test.jsonl", [("Latte", "beverage")])
    with pytest.raises(ConfigurationError, match="unknown back-end 'llm'"):
        await evaluate_categories(test, backend="llm")
    with pytest.raises(InputError, match="no labelled names"):
        await evaluate_categories(write_jsonl(tmp_path / "empty.jsonl", []))


@pytest.mark.slow
@pytest.mark.anyio
async def test_on_held_out_instacart_names_embedded_and_cascade_beat_keywords_alone(
    shared_receipts: Path, tmp_path: Path
) -> None:
    """A small slice of the real data: about 1,500 training names and 300 unseen test names (stratified)."""
    pairs = read_labelled(
        shared_receipts / "categories/instacart_products.csv", name_col="product_name", label_col="department"
    )
    source = write_jsonl(tmp_path / "slice.jsonl", pairs[:1800])
    train, test = split_labelled(source, tmp_path / "split", test_fraction=1 / 6, seed=7)
    cache = tmp_path / "cache"
    keywords = await evaluate_categories(test, examples=train, backend="keywords", cache_dir=cache)
    embedded = await evaluate_categories(test, examples=train, backend="embedded", cache_dir=cache)
    cascade = await evaluate_categories(test, examples=train, backend="cascade", cache_dir=cache)
    assert embedded.accuracy >= 0.7
    assert embedded.accuracy > keywords.accuracy + 0.05
    assert cascade.accuracy > keywords.accuracy + 0.05
    assert set(cascade.tiers) == {"keyword", "embedded"}
    assert sum(t.n for t in cascade.tiers.values()) == cascade.n == len(read_labelled(test))
