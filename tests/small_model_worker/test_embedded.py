"""The embedded MiniLM classifier: the numpy head and cache without a model, then (slow) the real model."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.rules.categories import DEFAULT_TAXONOMY, KeywordTier, load_rules
from orchestrator.rules.models import LineItem
from orchestrator.settings import use_settings
from orchestrator.small_model_worker.backends import embedded
from orchestrator.small_model_worker.backends.embedded import Blend, EmbeddedClassifier, EmbeddingCache, _Head
from orchestrator.small_model_worker.cascade import Cascade, Prediction
from orchestrator.workers.receipts.tools import expense_categorizer

# -- no model needed --------------------------------------------------------------------------------


def test_the_linear_head_learns_labels_from_words_and_vectors() -> None:
    rng = np.random.default_rng(0)
    words = {0: ["apple", "pear", "plum"], 1: ["soap", "bleach", "sponge"], 2: ["pen", "stapler", "ink"]}
    texts, labels = [], []
    for label, vocabulary in words.items():
        for i in range(40):
            texts.append(f"{vocabulary[i % 3]} item {i}")
            labels.append(label)
    vectors = rng.normal(size=(len(texts), 8)).astype(np.float32)  # noise: the words must carry it
    head = _Head.fit(texts, vectors, np.array(labels), 3, c=0.5)
    unseen = ["plum jam", "sponge cloth", "ink refill", "fresh pear"]
    scores = head.scores(unseen, rng.normal(size=(4, 8)).astype(np.float32))
    assert scores.argmax(axis=1).tolist() == [0, 1, 2, 0]


def test_the_embedding_cache_returns_what_was_stored_per_model(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    vector = np.arange(4, dtype=np.float32)
    cache.put("model-a", {"latte": vector})
    assert cache.get("model-a", ["latte", "tea"]).keys() == {"latte"}
    np.testing.assert_array_equal(cache.get("model-a", ["latte"])["latte"], vector)
    assert cache.get("model-b", ["latte"]) == {}


def test_a_missing_extra_is_a_configuration_error_naming_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sentence_transformers" else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r'pip install "orchestrator\[embedded\]"'):
        EmbeddedClassifier()


def test_a_missing_model_folder_is_a_configuration_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("the embedded extra is not installed")
    with pytest.raises(ConfigurationError, match="not found"):
        EmbeddedClassifier(tmp_path / "no-such-model")


# -- the real model (loaded once per process) ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_without_examples_names_go_to_the_closest_label_description(
    minilm_path: Path, embedding_cache: Path
) -> None:
    classifier = EmbeddedClassifier(
        minilm_path,
        descriptions={
            "beverage": "drinks: coffee, tea, juice, soda",
            "fuel": "petrol, diesel, gasoline for a car",
            "lodging": "hotel rooms and accommodation",
        },
        cache_dir=embedding_cache,
    )
    predictions = await classifier.classify(
        ["iced cappuccino", "unleaded gas 40L", "two nights at the inn"],
        [
            "beverage",
            "fuel",
            "lodging",
        ],
    )
    assert [p.label for p in predictions] == ["beverage", "fuel", "lodging"]
    assert all(0 < p.confidence <= 1 and p.tier == "embedded" for p in predictions)


@pytest.mark.slow
@pytest.mark.anyio
async def test_labelled_examples_classify_names_never_seen(minilm_path: Path, embedding_cache: Path) -> None:
    examples = {
        "produce": ["bananas", "organic apples", "baby spinach", "red onions", "avocado"],
        "pets": ["dry dog food", "cat litter", "chew toys for dogs", "kitten chow", "bird seed"],
        "household": ["paper towels", "dish soap", "trash bags", "laundry detergent", "sponges"],
    }
    classifier = EmbeddedClassifier(minilm_path, examples=examples, cache_dir=embedding_cache)
    names = ["fresh strawberries", "puppy training treats", "toilet paper rolls"]
    predictions = await classifier.classify(names, list(examples))
    assert [p.label for p in predictions] == ["produce", "pets", "household"]


@pytest.mark.anyio
async def test_concurrent_one_name_calls_are_classified_in_one_batch(minilm_path: Path, embedding_cache: Path) -> None:
    examples = {"produce": ["bananas", "baby spinach"], "pets": ["dry dog food", "cat litter"]}
    classifier = EmbeddedClassifier(minilm_path, examples=examples, cache_dir=embedding_cache, gather_s=0.3)
    batches: list[list[str]] = []
    real = classifier.classify_sync

    def spy(names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        batches.append(list(names))
        return real(names, labels)

    classifier.classify_sync = spy  # type: ignore[method-assign]
    names = ["fresh strawberries", "puppy treats", "kale", "kitten food", "fresh strawberries"]
    got: dict[int, Prediction] = {}

    async def one(index: int) -> None:  # as the elements of a for_each step call it
        (got[index],) = await classifier.classify([names[index]], ["produce", "pets"])

    async with anyio.create_task_group() as group:
        for index in range(len(names)):
            group.start_soon(one, index)
    assert batches == [["fresh strawberries", "puppy treats", "kale", "kitten food"]]  # one batch, no repeats
    assert [got[i].label for i in range(len(names))] == ["produce", "pets", "produce", "pets", "produce"]
    assert got[0] == real([names[0]], ["produce", "pets"])[0]  # the same answer as asked alone


@pytest.mark.slow
@pytest.mark.anyio
async def test_with_enough_examples_the_head_is_trained_and_used(minilm_path: Path, embedding_cache: Path) -> None:
    kinds = {
        "frozen": ["frozen {} pizza", "frozen {} dinner", "{} ice cream", "frozen {} waffles"],
        "beverages": ["{} sparkling water", "{} iced tea", "{} cold brew coffee", "{} orange juice"],
        "snacks": ["{} potato chips", "{} tortilla chips", "{} pretzels", "{} granola bar"],
    }
    flavours = ["classic", "organic", "lemon", "spicy", "vanilla", "family size", "light", "original", "bbq"]
    examples = [(t.format(f), label) for label, templates in kinds.items() for t in templates for f in flavours]
    classifier = EmbeddedClassifier(
        minilm_path, examples=examples, cache_dir=embedding_cache, blend=Blend(head_min_examples=100)
    )
    await classifier.fit()
    assert classifier._fitted is not None and classifier._fitted.head is not None
    predictions = await classifier.classify(["frozen mushroom pizza", "peach iced tea", "sea salt chips"], list(kinds))
    assert [p.label for p in predictions] == ["frozen", "beverages", "snacks"]


@pytest.mark.slow
def test_embeddings_are_unit_length_and_cached_on_disk(
    minilm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = EmbeddedClassifier(minilm_path, cache_dir=tmp_path)
    vectors = first.embed_sync(["latte", "diesel", "latte"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])

    def no_model(*args: Any) -> Any:
        raise AssertionError("the model was asked for cached texts")

    monkeypatch.setattr(embedded, "_load_model", no_model)
    again = EmbeddedClassifier(minilm_path, cache_dir=tmp_path).embed_sync(["diesel", "latte"])
    np.testing.assert_array_equal(again, vectors[[1, 0]])


@pytest.mark.slow
@pytest.mark.anyio
async def test_classifying_leaves_the_event_loop_free(minilm_path: Path, embedding_cache: Path) -> None:
    classifier = EmbeddedClassifier(minilm_path, examples={"a": ["apple"], "b": ["bleach"]}, cache_dir=embedding_cache)
    finished = anyio.Event()
    ticks = 0

    async def classify() -> None:
        await classifier.classify([f"fresh produce item {i}" for i in range(50)], ["a", "b"])
        finished.set()

    async def tick() -> None:
        nonlocal ticks
        while not finished.is_set():
            ticks += 1
            await anyio.sleep(0)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(classify)  # starts first: if it blocked the loop it would finish before any tick
            tg.start_soon(tick)
    assert ticks > 0


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_categorizer_cascade_falls_back_to_the_embedded_tier(minilm_path: Path, tmp_path: Path) -> None:
    items = [
        LineItem(name="Heineken 6pk", amount=9.0),
        LineItem(name="Cappuccino Grande Oat", amount=5.0),
        LineItem(name="Pinot Grigio Santa Margherita", amount=19.0),
    ]
    with use_settings(use_small_model=True, orchestrator_home=tmp_path):
        result = await expense_categorizer(items)
    assert [i.category for i in result.items] == ["alcohol", "beverage", "alcohol"]
    assert result.items[0].mode == "keyword"
    assert sum(result.modes.values()) == 3
    rules = load_rules()
    cascade = Cascade(
        [
            KeywordTier(rules),
            embedded.shared_classifier(
                examples=rules.examples(), descriptions=rules.descriptions(), cache_dir=tmp_path / "cache"
            ),
        ]
    )
    predictions = await cascade.classify(["Santa Margherita"], list(DEFAULT_TAXONOMY))
    assert predictions[0].tier == "embedded"
