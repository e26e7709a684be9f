"""The keyword categorizer: rules from the data file, user rules merged over them, learned rules, the tool."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import ConfigurationError
from orchestrator.rules.categories import (
    DEFAULT_TAXONOMY,
    KeywordRules,
    KeywordTier,
    categorize_with_keywords,
    learn_rules,
    load_rules,
    normalize_term,
)
from orchestrator.rules.models import LineItem
from orchestrator.settings import use_settings
from orchestrator.small_model_worker.cascade import Prediction
from orchestrator.small_model_worker.worker import SmallModelWorker
from orchestrator.toolbox import default_registry
from orchestrator.workers.receipts.tools import expense_categorizer

TAXONOMY = list(DEFAULT_TAXONOMY)


def one(name: str, taxonomy: Sequence[str] = TAXONOMY, rules: KeywordRules | None = None) -> Prediction:
    return (rules or load_rules()).predict([name], taxonomy)[0]


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("Iced Caramel Latte", "beverage"),
        ("Heineken 6pk", "alcohol"),
        ("Chicken Burger Meal", "food"),
        ("NASI LEMAK AYAM", "food"),
        ("Bananas 1.2kg", "groceries"),
        ("Paper Towels 6 Roll", "household"),
        ("Printer Paper A4 2 Reams", "office_supplies"),
        ("USB-C Charging Cable", "electronics"),
        ("Slim Fit Jeans", "clothing"),
        ("Ibuprofen 200mg", "health"),
        ("Uber Trip", "transport"),
        ("Unleaded Pump 3", "fuel"),
        ("Hotel Room 2 Nights", "lodging"),
        ("Movie Ticket Adult", "entertainment"),
        ("Haircut", "services"),
        ("Gift Card", "other"),
    ],
)
def test_default_rules_put_plain_items_in_their_expense_category(name: str, category: str) -> None:
    prediction = one(name)
    assert (prediction.label, prediction.tier) == (category, "keyword")
    assert prediction.confidence >= 0.5


def test_a_name_no_keyword_matches_goes_to_other_with_zero_confidence() -> None:
    assert one("Zxqv 123") == Prediction("other", 0.0, "keyword")


def test_plural_and_singular_forms_match_the_same_keyword() -> None:
    assert normalize_term("Cookies") == normalize_term("cookie")
    assert normalize_term("BOXES of Berries") == "box of berry"
    assert one("Toothbrushes").label == one("Toothbrush").label == "health"


def test_the_longest_matching_phrase_wins_over_the_words_inside_it() -> None:
    assert one("Root Beer").label == "beverage"
    assert one("Peanut Butter").label == "groceries"


def test_names_printed_without_spaces_are_still_matched() -> None:
    assert one("BaconCheeseburger").label == "food"
    assert one("GRANNYSMITHAPPLES").label == "groceries"
    assert one("32ZFOUNTAINDRINK").label == "beverage"


def test_evidence_for_two_categories_lowers_the_confidence() -> None:
    clear = one("Heineken")
    mixed = one("Heineken Chicken Wings")
    assert clear.label == "alcohol"
    assert mixed.confidence < clear.confidence


def test_categories_outside_the_taxonomy_are_never_given() -> None:
    prediction = one("Heineken", taxonomy=["food", "beverage"])
    assert prediction.label in {"food", "beverage"}
    assert prediction.confidence == 0.0


def test_categorize_with_keywords_sums_amounts_per_category_and_counts_the_tier() -> None:
    items = [
        LineItem(name="Latte", amount=4.5),
        LineItem(name="Espresso", amount=3.0),
        LineItem(name="Croissant Sandwich", amount=6.25),
        LineItem(name="Coupon Latte", amount=-1.0),
        LineItem(name="Zxqv", amount=2.0),
    ]
    result = categorize_with_keywords(items)
    assert [item.category for item in result.items] == ["beverage", "beverage", "food", "beverage", "other"]
    assert result.totals == {"beverage": 6.5, "food": 6.25, "other": 2.0}
    assert result.total == 14.75
    assert result.modes == {"keyword": 5}
    assert all(item.mode == "keyword" for item in result.items)
    assert result.items[0].name == "Latte" and result.items[0].amount == 4.5


def test_user_rules_add_and_reweight_terms_over_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "categories": {
                    "office_supplies": {"keywords": {"toner": 0, "moleskine": 0.9}},
                    "pets": {"description": "pet food and supplies", "keywords": ["kibble", "cat litter"]},
                }
            }
        )
    )
    rules = load_rules(path)
    assert one("Moleskine Large", rules=rules).label == "office_supplies"
    assert one("Toner HP 26A", rules=rules).label != "office_supplies"
    assert one("Kibble 5kg", taxonomy=[*TAXONOMY, "pets"], rules=rules).label == "pets"
    assert rules.categories["pets"].keywords == {"kibble": 0.8, "cat litter": 0.8}
    assert one("Heineken", rules=rules).label == "alcohol"  # the defaults are still there
    only_mine = load_rules(path, defaults=False)
    assert set(only_mine.categories) == {"office_supplies", "pets"}


def test_example_item_names_teach_the_embedded_tier_but_never_match_as_keywords(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"categories": {"food": {"examples": ["Xyzzy", "Blueberry Muffin"]}}}))
    rules = load_rules(path)
    food = rules.examples()["food"]
    assert {"Xyzzy", "Blueberry Muffin"} <= set(food)
    assert set(load_rules().categories["food"].examples) <= set(food)  # the shipped examples are kept
    assert "burger" in food  # and the decisive keywords still teach it too
    assert one("Xyzzy", rules=rules).label == "other"  # an example is not a keyword


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"categories": {"food": {"keywords": {"pie": 1.5}}}}', "between 0 and 1"),
        ('{"categories": {', "rules.json:1:"),
        ('{"categories": {"food": {"keywords": "pie"}}}', "categories.food.keywords"),
    ],
)
def test_a_broken_rules_file_is_a_configuration_error_that_says_where(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        load_rules(path)


def test_a_missing_rules_file_or_a_bad_pattern_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_rules(tmp_path / "nope.json")
    rules = KeywordRules.model_validate({"categories": {"food": {"patterns": {"(unclosed": 0.5}}}})
    with pytest.raises(ConfigurationError, match="bad pattern"):
        rules.predict(["pie"], ["food"])


def test_the_data_file_covers_exactly_the_default_taxonomy_with_unique_valid_terms() -> None:
    raw = files("orchestrator.rules").joinpath("data/categories.json").read_text(encoding="utf-8")

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
        return dict(pairs)

    json.loads(raw, object_pairs_hook=no_duplicates)
    rules = load_rules()
    assert list(rules.categories) == TAXONOMY
    assert rules.fallback == "other"
    assert all(rules.categories[name].description for name in TAXONOMY)
    assert all(len(rules.categories[name].examples) >= 10 for name in TAXONOMY)
    shipped = [example.lower() for name in TAXONOMY for example in rules.categories[name].examples]
    assert len(shipped) == len(set(shipped)), "an example name listed twice"
    rules.predict(["compile every pattern"], TAXONOMY)


def test_rules_learned_from_examples_keep_frequent_telling_terms() -> None:
    examples = [
        ("Organic Whole Milk", "dairy"),
        ("Low Fat Milk", "dairy"),
        ("Greek Yogurt Plain", "dairy"),
        ("Vanilla Yogurt", "dairy"),
        ("Sourdough Bread", "bakery"),
        ("Whole Wheat Bread", "bakery"),
        ("Plain Bagels", "bakery"),
        ("Organic Bagels", "bakery"),
        ("Organic Bread Flour", "pantry"),
    ]
    rules = learn_rules(examples)
    assert rules.categories["dairy"].keywords["milk"] == pytest.approx(2 / 3, abs=1e-3)
    assert rules.categories["dairy"].keywords["plain"] == rules.categories["bakery"].keywords["plain"] == 0.333
    assert "sourdough" not in rules.categories["bakery"].keywords  # seen once
    assert rules.fallback in {"dairy", "bakery"}
    labels = ["dairy", "bakery", "pantry"]
    assert [p.label for p in rules.predict(["Skim Milk", "Raisin Bagels", "Brioche Bread"], labels)] == [
        "dairy",
        "bakery",
        "bakery",
    ]
    restored = KeywordRules.model_validate_json(rules.model_dump_json())
    assert restored.predict(["Skim Milk"], labels) == rules.predict(["Skim Milk"], labels)


def test_the_tool_is_registered_and_uses_keywords_unless_small_models_are_on() -> None:
    spec = default_registry(plugins=False).get("expense_categorizer").spec
    assert spec.kind == "function"
    assert set(spec.input_schema["properties"]) == {"items", "taxonomy", "rules_path"}


@pytest.mark.anyio
async def test_the_tool_reports_the_keyword_tier_to_the_running_step() -> None:
    context = StepContext(run_id="r1", step_id="categorize")
    token = step_reporter.set(context)
    try:
        result = (
            await default_registry(plugins=False)
            .get("expense_categorizer")
            .invoke({"items": [{"name": "Latte", "amount": 4.5}, {"name": "Diesel", "amount": 50.0}]})
        )
    finally:
        step_reporter.reset(token)
    assert [item["category"] for item in result["items"]] == ["beverage", "fuel"]
    assert result["modes"] == {"keyword": 2}
    assert context.modes == ["keyword"]
    assert context.notes == {"tier:keyword": 2}


class ScriptedTier:
    """A tier that answers every name with one label, for checking the cascade seam without a model."""

    def __init__(self, name: str, label: str, confidence: float) -> None:
        self.name, self.label, self.confidence = name, label, confidence
        self.asked: list[str] = []

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        self.asked.extend(names)
        return [Prediction(self.label, self.confidence) for _ in names]


@pytest.mark.anyio
async def test_with_small_models_on_the_tool_runs_the_cascade_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    second = ScriptedTier("embedded", "groceries", 0.9)
    monkeypatch.setattr(SmallModelWorker, "category_tiers", lambda self, rules, **_: [KeywordTier(rules), second])
    items = [LineItem(name="Heineken", amount=5.0), LineItem(name="Mystery Thing", amount=2.0)]
    context = StepContext(run_id="r1", step_id="categorize")
    token = step_reporter.set(context)
    try:
        with use_settings(use_small_model=True):
            result = await expense_categorizer(items)
    finally:
        step_reporter.reset(token)
    assert [(i.category, i.mode) for i in result.items] == [("alcohol", "keyword"), ("groceries", "embedded")]
    assert second.asked == ["Mystery Thing"]
    assert result.modes == {"keyword": 1, "embedded": 1}
    assert context.notes == {"tier:keyword": 1, "tier:embedded": 1}


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("Blueberry Muffin", "food"),
        ("Orange Juice", "beverage"),
        ("Chicken Soup", "food"),
        ("Avocado Toast", "food"),
        ("Whole Milk 1 gal", "groceries"),  # a unit never heads the name
    ],
)
def test_the_last_noun_heads_the_name_when_keywords_disagree(name: str, category: str) -> None:
    assert one(name).label == category
