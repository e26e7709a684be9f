"""The confidence cascade: who answers, who is asked, what is reported, what happens when a tier fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import ConfigurationError, ModelError, RunError
from orchestrator.small_model_worker.cascade import Cascade, Prediction, Tier


class TableTier:
    """Answers from a table name -> (label, confidence); records what it was asked."""

    def __init__(self, name: str, table: Mapping[str, tuple[str, float]], *, error: Exception | None = None) -> None:
        self.name = name
        self.table = dict(table)
        self.error = error
        self.asked: list[list[str]] = []

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        self.asked.append(list(names))
        if self.error is not None:
            raise self.error
        return [Prediction(*self.table.get(name, (labels[0], 0.0))) for name in names]


LABELS = ["food", "beverage", "fuel"]


def test_table_tiers_are_tiers() -> None:
    assert isinstance(TableTier("t", {}), Tier)
    assert isinstance(Cascade([TableTier("t", {})]), Tier)


@pytest.mark.anyio
async def test_a_sure_tier_answers_and_only_the_rest_goes_to_the_next_tier() -> None:
    keyword = TableTier("keyword", {"latte": ("beverage", 0.95), "pie": ("food", 0.5)})
    embedded = TableTier("embedded", {"pie": ("food", 0.85), "gas": ("fuel", 0.9)})
    predictions = await Cascade([keyword, embedded], threshold=0.8).classify(["latte", "pie", "gas"], LABELS)
    assert predictions == [
        Prediction("beverage", 0.95, "keyword"),
        Prediction("food", 0.85, "embedded"),
        Prediction("fuel", 0.9, "embedded"),
    ]
    assert embedded.asked == [["pie", "gas"]]


@pytest.mark.anyio
async def test_later_tiers_are_not_asked_when_every_answer_is_sure() -> None:
    keyword = TableTier("keyword", {"latte": ("beverage", 0.95)})
    embedded = TableTier("embedded", {})
    await Cascade([keyword, embedded]).classify(["latte"], LABELS)
    assert embedded.asked == []


@pytest.mark.anyio
async def test_a_per_tier_threshold_overrides_the_default() -> None:
    keyword = TableTier("keyword", {"pie": ("food", 0.6)})
    embedded = TableTier("embedded", {"pie": ("beverage", 0.3)})
    strict = await Cascade([keyword, embedded], threshold=0.8).classify(["pie"], LABELS)
    lenient = await Cascade([keyword, embedded], threshold=0.8, thresholds={"keyword": 0.5}).classify(["pie"], LABELS)
    assert strict == [Prediction("food", 0.6, "keyword")]  # nobody sure: the most confident answer
    assert lenient == [Prediction("food", 0.6, "keyword")]
    assert len(embedded.asked) == 1  # only the strict cascade asked it


@pytest.mark.anyio
async def test_when_no_tier_is_sure_the_most_confident_answer_wins_and_ties_go_to_the_later_tier() -> None:
    keyword = TableTier("keyword", {"a": ("food", 0.6), "b": ("food", 0.3), "c": ("food", 0.4)})
    embedded = TableTier("embedded", {"a": ("beverage", 0.5), "b": ("beverage", 0.7), "c": ("fuel", 0.4)})
    predictions = await Cascade([keyword, embedded], threshold=0.8).classify(["a", "b", "c"], LABELS)
    assert predictions == [
        Prediction("food", 0.6, "keyword"),
        Prediction("beverage", 0.7, "embedded"),
        Prediction("fuel", 0.4, "embedded"),
    ]


@pytest.mark.anyio
async def test_a_failing_later_tier_leaves_the_earlier_answers(caplog: pytest.LogCaptureFixture) -> None:
    keyword = TableTier("keyword", {"latte": ("beverage", 0.95), "pie": ("food", 0.4)})
    llm = TableTier("llm", {}, error=ModelError("server down", retryable=True))
    context = StepContext(run_id="r", step_id="s")
    token = step_reporter.set(context)
    try:
        predictions = await Cascade([keyword, llm]).classify(["latte", "pie"], LABELS)
    finally:
        step_reporter.reset(token)
    assert predictions == [Prediction("beverage", 0.95, "keyword"), Prediction("food", 0.4, "keyword")]
    assert "tier 'llm' failed" in caplog.text
    assert context.notes == {"tier_failed:llm": 1, "tier:keyword": 2}


@pytest.mark.anyio
async def test_a_failing_first_tier_or_a_set_up_error_propagates() -> None:
    broken = TableTier("keyword", {}, error=ModelError("boom"))
    with pytest.raises(ModelError):
        await Cascade([broken, TableTier("embedded", {})]).classify(["x"], LABELS)
    misconfigured = TableTier("embedded", {}, error=ConfigurationError("pip install it"))
    with pytest.raises(ConfigurationError):
        await Cascade([TableTier("keyword", {}), misconfigured]).classify(["x"], LABELS)


@pytest.mark.anyio
async def test_a_tier_giving_the_wrong_number_of_answers_is_a_run_error() -> None:
    class Short:
        name = "short"

        async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
            return []

    with pytest.raises(RunError, match="gave 0 predictions for 2 names"):
        await Cascade([Short()]).classify(["a", "b"], LABELS)


@pytest.mark.anyio
async def test_per_tier_counts_and_modes_are_reported_to_the_running_step() -> None:
    keyword = TableTier("keyword", {"latte": ("beverage", 0.95), "tea": ("beverage", 0.9)})
    embedded = TableTier("embedded", {"pie": ("food", 0.85)})
    context = StepContext(run_id="r", step_id="s")
    token = step_reporter.set(context)
    try:
        await Cascade([keyword, embedded]).classify(["latte", "pie", "tea"], LABELS)
    finally:
        step_reporter.reset(token)
    assert context.modes == ["keyword", "embedded"]
    assert context.notes == {"tier:keyword": 2, "tier:embedded": 1}


@pytest.mark.anyio
async def test_no_names_means_no_tier_is_asked() -> None:
    keyword = TableTier("keyword", {})
    assert await Cascade([keyword]).classify([], LABELS) == []
    assert keyword.asked == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tiers": []}, "at least one tier"),
        ({"threshold": 1.5}, "between 0 and 1"),
        ({"thresholds": {"keyword": -0.1}}, "between 0 and 1"),
        ({"thresholds": {"llm": 0.5}}, "unknown tiers"),
    ],
)
def test_a_misconfigured_cascade_is_a_configuration_error(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"tiers": [TableTier("keyword", {})], **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        Cascade(**arguments)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_when_no_tier_is_sure_the_last_tier_can_be_made_to_win() -> None:
    keyword = TableTier("keyword", {"pie": ("food", 0.6)})
    embedded = TableTier("embedded", {"pie": ("groceries", 0.5)})
    labels = ["food", "groceries"]
    assert (await Cascade([keyword, embedded]).classify(["pie"], labels))[0].label == "food"
    assert (await Cascade([keyword, embedded], unsure="last").classify(["pie"], labels))[0].label == "groceries"


class AbstainingTier:
    name = "llm"

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction | None]:
        return [None if name == "gas" else Prediction("food", 0.95, self.name) for name in names]


@pytest.mark.anyio
async def test_names_a_tier_abstains_on_keep_the_earlier_answers() -> None:
    keyword = TableTier("keyword", {"gas": ("fuel", 0.5), "pie": ("food", 0.1)})
    predictions = await Cascade([keyword, AbstainingTier()]).classify(["gas", "pie"], LABELS)
    assert predictions == [Prediction("fuel", 0.5, "keyword"), Prediction("food", 0.95, "llm")]
    with pytest.raises(RunError, match="no tier of 'cascade' answered 'gas'"):
        await Cascade([AbstainingTier()]).classify(["gas"], LABELS)
