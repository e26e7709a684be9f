"""SmallModelWorker against fake Ollama, OpenAI-compatible and Azure AI servers: schema-constrained calls,
batching, every task, and the mode recorded per item."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import BaseModel

from orchestrator.context import StepContext, step_reporter
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.testing.fake_llm import FakeLLMServer

from .conftest import CHAT_BACKENDS, KEY

pytestmark = pytest.mark.anyio

WorkerFor = Callable[..., SmallModelWorker]

CAFE = """BLUE HERON CAFE
Date: 03/14/2024
Latte 2 x 3.50   7.00
Blueberry Muffin 2.75
Subtotal 9.75
Tax 0.78
TOTAL $10.53"""


@pytest.mark.parametrize("backend", CHAT_BACKENDS)
async def test_each_chat_backend_asks_for_the_schema_natively_and_records_its_mode(
    backend: str, worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    async with worker_for(backend, cascade=("llm",)) as worker:
        results = await worker.classify(["iced latte", "diesel 40L"], ["beverage", "fuel"])
    assert [(r.label, r.mode) for r in results] == [("beverage", worker.mode), ("fuel", worker.mode)]
    assert worker.mode == {"ollama": "ollama:phi3", "openai_compatible": "openai_compatible:phi3"}.get(
        backend, "azure:Phi-4-mini"
    )
    request = fake.last_request
    schema = request.json_schema or {}
    assert schema["properties"]["answers"]["items"]["properties"]["label"]["enum"] == ["beverage", "fuel"]
    if backend == "ollama":
        assert request.path == "/api/chat" and request.body["format"] == schema
    else:
        assert request.body["response_format"]["type"] == "json_schema"
    if backend == "azure":
        assert request.path == "/models/chat/completions"
        assert request.query["api-version"] == "2024-08-01-preview"
        assert request.headers["api-key"] == KEY


async def test_many_items_go_in_one_call_per_batch_and_come_back_in_order(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    names = ["latte", "diesel", "hotel night", "cola", "petrol"]
    async with worker_for(cascade=("llm",), batch_size=2, concurrency=1) as worker:
        results = await worker.classify(names, ["beverage", "fuel", "lodging"])
    assert [r.label for r in results] == ["beverage", "fuel", "lodging", "beverage", "fuel"]
    assert len(fake.requests) == 3
    assert [r.json_schema["properties"]["answers"]["maxItems"] for r in fake.requests] == [2, 2, 1]


async def test_only_the_items_keywords_are_unsure_of_go_to_the_model(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    context = StepContext("r1", "categorize")
    token = step_reporter.set(context)
    try:
        async with worker_for(cascade=("keyword", "llm")) as worker:
            result = await worker.categorize_items(["Latte", "Avocado Toast"])
    finally:
        step_reporter.reset(token)
    assert [(i.category, i.mode) for i in result.items] == [("beverage", "keyword"), ("food", "ollama:phi3")]
    assert len(fake.requests) == 1 and "Avocado Toast" in fake.last_request.last_user_text
    assert "Latte" not in fake.last_request.last_user_text
    assert context.modes == ["keyword", "ollama:phi3"]
    assert context.notes == {"tier:keyword": 1, "tier:ollama:phi3": 1}
    assert context.usage is not None and context.usage.calls == 1


async def test_receipts_are_parsed_by_the_model_and_checked_like_the_keyword_parser(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    async with worker_for() as worker:
        receipt = await worker.parse_line_items(CAFE)
    assert receipt.mode == "ollama:phi3"
    assert [(i.name, i.amount) for i in receipt.items] == [("Latte", 7.0), ("Blueberry Muffin", 2.75)]
    assert (receipt.total, receipt.date, receipt.confidence) == (10.53, "2024-03-14", 1.0)
    schema = fake.last_request.body["format"]
    assert "$ref" not in str(schema) and {"items", "total", "merchant"} <= set(schema["properties"])


async def test_a_model_whose_numbers_agree_less_than_the_keywords_loses_to_them(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue({"merchant": "X", "total": 99.0, "items": [{"name": "Latte", "amount": 1.0}]})
    async with worker_for() as worker:
        receipt = await worker.parse_line_items(CAFE)
    assert receipt.mode == "keyword" and receipt.total == 10.53


class Invoice(BaseModel):
    vendor: str | None
    total: float | None


async def test_extraction_follows_a_pydantic_schema_and_validates_the_answer(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue({"vendor": "ACME", "total": 12.5})
    async with worker_for() as worker:
        found = await worker.extract_entities("Invoice from ACME, total $12.50", Invoice)
    assert (found.data, found.mode) == ({"vendor": "ACME", "total": 12.5}, "ollama:phi3")
    assert set(fake.last_request.body["format"]["properties"]) == {"vendor", "total"}


async def test_extraction_by_field_names_and_summaries_come_from_the_model(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue({"vendor": "ACME"}, {"summary": "ACME billed 12.50."})
    async with worker_for() as worker:
        found = await worker.extract_entities("Invoice from ACME", ["vendor"])
        summary = await worker.summarize("Invoice from ACME. Total 12.50. Due in 30 days.")
    assert found.data == {"vendor": "ACME"} and found.mode == "ollama:phi3"
    assert (summary.summary, summary.mode) == ("ACME billed 12.50.", "ollama:phi3")


async def test_sentiment_asks_the_model_only_where_the_lexicon_is_unsure(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue({"answers": [{"label": "negative", "confidence": 0.9}]})
    async with worker_for() as worker:
        results = await worker.sentiment(["Great app, love it, works perfectly", "Why does it need my location?"])
    assert [(r.label, r.mode) for r in results] == [("positive", "keyword"), ("negative", "ollama:phi3")]
    assert "location" in fake.last_request.last_user_text and "Great app" not in fake.last_request.last_user_text


async def test_the_design_example_runs_as_written(worker_for: WorkerFor) -> None:
    async with worker_for(cascade=("keyword", "llm")) as worker:
        items = await worker.parse_line_items(CAFE)
        categorized = await worker.categorize_items(items)
    assert [i.category for i in categorized.items] == ["beverage", "food"]
    assert categorized.total == 9.75
