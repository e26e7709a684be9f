"""A small model never breaks the workflow: down, slow, garbage or the wrong schema, keywords answer."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.testing.fake_llm import Failure, FakeLLMServer, Reply

pytestmark = pytest.mark.anyio

WorkerFor = Callable[..., SmallModelWorker]
LABELS = ["beverage", "fuel", "other"]
RECEIPT = "CORNER CAFE\nLatte 3.50\nTOTAL 3.50"


def step() -> tuple[StepContext, object]:
    context = StepContext("r1", "s1")
    return context, step_reporter.set(context)


async def test_a_server_that_is_down_leaves_every_item_to_the_keywords(worker_for: WorkerFor) -> None:
    dead = FakeLLMServer().start()
    url = dead.base_url
    dead.close()  # its port now refuses connections
    context, token = step()
    try:
        async with worker_for(base_url=url, cascade=("keyword", "llm")) as worker:
            result = await worker.categorize_items(["Latte", "Zorblax 3000"])
            receipt = await worker.parse_line_items(RECEIPT)
    finally:
        step_reporter.reset(token)  # type: ignore[arg-type]
    assert [(i.category, i.mode) for i in result.items] == [("beverage", "keyword"), ("other", "keyword")]
    assert receipt.mode == "keyword" and receipt.total == 3.5
    assert context.notes is not None
    assert context.notes["failed:ollama:phi3"] == 2 and context.notes["fallback:keyword"] == 1


async def test_a_dead_server_is_one_warning_per_failed_call_not_one_per_document(
    worker_for: WorkerFor, caplog: pytest.LogCaptureFixture
) -> None:
    dead = FakeLLMServer().start()
    url = dead.base_url
    dead.close()
    with caplog.at_level(logging.INFO, logger="orchestrator.small_model_worker"):
        async with worker_for(base_url=url, cascade=("llm",)) as worker:
            found = [await worker.extract_entities(f"review {i}: delivery was late", ["issues"]) for i in range(8)]
    assert all(f.mode == "keyword" for f in found)  # every document still answered
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3 and all("cannot reach" in w for w in warnings)  # then the breaker opened
    fallbacks = [r for r in caplog.records if "could not extract" in r.getMessage()]
    assert len(fallbacks) == 8 and all(r.levelno == logging.INFO for r in fallbacks)


async def test_a_server_slower_than_the_timeout_falls_back(worker_for: WorkerFor, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(data={"answers": [{"label": "fuel", "confidence": 0.9}]}, delay_s=5.0))
    async with worker_for(cascade=("keyword", "llm"), timeout_s=0.2) as worker:
        results = await worker.classify(["Zorblax 3000"], LABELS)
    assert (results[0].label, results[0].mode) == ("other", "keyword")


async def test_garbage_gets_one_repair_attempt_then_the_keywords_answer(
    worker_for: WorkerFor, fake: FakeLLMServer
) -> None:
    fake.enqueue("Sure! The answer is fuel.", "I said: fuel")
    context, token = step()
    try:
        async with worker_for(cascade=("keyword", "llm")) as worker:
            results = await worker.classify(["Zorblax 3000"], LABELS)
    finally:
        step_reporter.reset(token)  # type: ignore[arg-type]
    assert results[0].mode == "keyword"
    assert len(fake.requests) == 2  # the call and one repair, no more
    repair = fake.requests[1].messages
    assert repair[-2] == {"role": "assistant", "content": "Sure! The answer is fuel."}
    assert "not valid" in repair[-1]["content"]
    assert context.notes is not None and context.notes["repaired:ollama:phi3"] == 1
    assert context.notes["invalid:ollama:phi3"] == 1


async def test_a_repaired_answer_is_used(worker_for: WorkerFor, fake: FakeLLMServer) -> None:
    fake.enqueue("not json", {"answers": [{"label": "fuel", "confidence": 0.9}]})
    async with worker_for(cascade=("keyword", "llm")) as worker:
        results = await worker.classify(["Zorblax 3000"], LABELS)
    assert (results[0].label, results[0].mode) == ("fuel", "ollama:phi3")


@pytest.mark.parametrize(
    "wrong",
    [
        {"category": "fuel"},  # another shape
        {"answers": []},  # too few answers
        {"answers": [{"label": "spaceship", "confidence": 1.0}]},  # a label not allowed
    ],
)
async def test_json_of_the_wrong_schema_falls_back(worker_for: WorkerFor, fake: FakeLLMServer, wrong: object) -> None:
    fake.enqueue(wrong, wrong)
    async with worker_for(cascade=("keyword", "llm")) as worker:
        results = await worker.classify(["Zorblax 3000"], LABELS)
    assert results[0].mode == "keyword"


@pytest.mark.parametrize("reply", [Failure(500), Failure(404, 'model "phi3" not found'), "garbage"])
async def test_parsing_falls_back_to_the_keyword_parser(
    worker_for: WorkerFor, fake: FakeLLMServer, reply: object
) -> None:
    fake.enqueue(reply, reply)
    async with worker_for() as worker:
        receipt = await worker.parse_line_items(RECEIPT)
    assert (receipt.mode, receipt.total, [i.name for i in receipt.items]) == ("keyword", 3.5, ["Latte"])


async def test_extraction_and_summaries_fall_back_too(worker_for: WorkerFor, fake: FakeLLMServer) -> None:
    fake.enqueue(Failure(500), {"nope": 1}, {"nope": 2})
    async with worker_for() as worker:
        found = await worker.extract_entities("Refund me $12.50 at help@example.com", ["amount"])
        summary = await worker.summarize("First sentence. Second one. Third one.", 1)
    assert found.mode == "keyword" and "$12.50" in found.entities
    assert (summary.mode, summary.summary) == ("keyword", "First sentence.")


def test_a_misconfigured_backend_is_a_clear_configuration_error(isolated_settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="SMALL_MODEL_BASE_URL"):
        SmallModelWorker("openai_compatible", settings=isolated_settings)
    with pytest.raises(ConfigurationError, match="AZURE_AI_ENDPOINT"):
        SmallModelWorker("azure", settings=isolated_settings)
    with pytest.raises(ConfigurationError, match="did you mean 'ollama'"):
        SmallModelWorker("olama", settings=isolated_settings)
    with pytest.raises(ConfigurationError, match="unknown tier 'llama'"):
        SmallModelWorker("ollama", settings=isolated_settings, cascade=("keyword", "llama"))
