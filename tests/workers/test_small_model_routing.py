"""USE_SMALL_MODEL routing in plans: the receipt tools and the `small_model` tool ask the small model, record
which mode answered, share one worker per run, and fall back to keywords with nothing lost."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.batch import run_batch
from orchestrator.errors import ToolError
from orchestrator.executor import StepFinished, execute_plan
from orchestrator.executor.events import Event
from orchestrator.plan.validate import load_plan
from orchestrator.settings import Settings, use_settings
from orchestrator.small_model_worker import worker as worker_module
from orchestrator.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply
from orchestrator.testing.fake_small_model import SmallModelResponder
from orchestrator.toolbox import default_registry
from orchestrator.workers import expense_categorizer_worker, line_item_parser_worker

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "examples" / "example_plan_hybrid.json"
CAFE = REPO / "examples" / "receipts" / "cafe.txt"
OLLAMA = "ollama:phi3"


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=SmallModelResponder()) as server:
        yield server


@pytest.fixture
def small_model(fake: FakeLLMServer, isolated_settings: Settings) -> Iterator[Settings]:
    """USE_SMALL_MODEL on, Ollama at the fake server, keyword and LLM tiers (no MiniLM load in these tests)."""
    with use_settings(
        isolated_settings,
        use_small_model=True,
        small_model_backend="ollama",
        ollama_api_url=fake.base_url,
        small_model_cascade=("keyword", "llm"),
        small_model_max_retries=0,
    ) as settings:
        yield settings


async def tool(name: str, **args: Any) -> Any:
    return await default_registry(plugins=False).get(name).invoke(args)


async def test_without_small_models_the_new_tasks_answer_with_keywords() -> None:
    parsed = await tool("small_model", task="parse_items", text=CAFE.read_text())
    assert parsed["mode"] == "keyword" and parsed["receipt"]["total"] == 29.16
    categorized = await tool("small_model", task="categorize", text="Latte")
    assert (categorized["label"], categorized["mode"]) == ("beverage", "keyword")
    with pytest.raises(ToolError, match="needs a non-empty text"):
        await tool("small_model", task="summarize", text=" ")


@pytest.mark.usefixtures("small_model")
async def test_the_small_model_tool_routes_every_task_to_the_worker(fake: FakeLLMServer) -> None:
    classified = await tool(
        "small_model", task="classify", text="A randomised trial of reminders", labels=["survey", "trial"]
    )
    assert classified["label"] == "trial"
    parsed = await tool("small_model", task="parse_items", text=CAFE.read_text())
    assert parsed["mode"] == OLLAMA and len(parsed["receipt"]["items"]) == 5
    categorized = await tool("small_model", task="categorize", items=[{"name": "Avocado Toast", "amount": 8.5}])
    assert categorized["items"][0]["mode"] == OLLAMA
    issues = await tool("small_model", task="extract", text="Delivery was late and support was rude", fields=["issues"])
    assert (issues["mode"], sorted(issues["entities"])) == (OLLAMA, ["customer support", "delivery"])
    assert fake.last_request.body["format"]["properties"]["issues"]["items"]["enum"]  # the known aspects
    summary = await tool("small_model", task="summarize", text="It works. Mostly.")
    assert (summary["summary"], summary["mode"]) == ("It works", OLLAMA)


@pytest.mark.usefixtures("small_model")
async def test_a_plan_routes_parsing_and_categorization_and_the_result_says_who_answered(
    fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    real = worker_module.SmallModelWorker

    class Counted(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(worker_module, "SmallModelWorker", Counted)
    events: list[Event] = []
    result = await execute_plan(PLAN, {"image_path": str(CAFE)}, on_event=events.append)
    assert result.ok
    parse, categorize = result.steps["parse"], result.steps["categorize"]
    assert parse.modes == (OLLAMA,) and parse.counts == {f"tier:{OLLAMA}": 1}
    assert set(categorize.modes) == {"keyword", OLLAMA}
    assert categorize.counts[f"tier:{OLLAMA}"] >= 1 and sum(categorize.counts.values()) == 5
    assert [i["mode"] for i in categorize.output["items"]].count(OLLAMA) == categorize.counts[f"tier:{OLLAMA}"]
    finished = {e.step_id: e.modes for e in events if isinstance(e, StepFinished)}
    assert finished["parse"] == (OLLAMA,) and OLLAMA in finished["categorize"]
    assert result.usage.calls == len(fake.requests) == 2
    assert len(made) == 1  # one worker served the whole run


async def test_a_misconfigured_small_model_does_not_break_the_run(isolated_settings: Settings) -> None:
    with use_settings(isolated_settings, use_small_model=True, small_model_backend="openai_compatible"):
        result = await execute_plan(PLAN, {"image_path": str(CAFE)})
    assert result.ok and result.steps["parse"].modes == ("keyword",)
    assert set(result.steps["categorize"].modes) == {"keyword"}


@pytest.mark.usefixtures("small_model")
async def test_the_designs_worker_functions_take_payloads() -> None:
    parsed = await line_item_parser_worker({"text": CAFE.read_text()})
    assert parsed["mode"] == OLLAMA and parsed["total"] == 29.16
    categorized = await expense_categorizer_worker({"items": parsed["items"]})
    assert [i["category"] for i in categorized["items"]][:2] == ["beverage", "food"]
    assert (await expense_categorizer_worker({"items": ["Diesel"]}))["items"][0]["category"] == "fuel"
    with pytest.raises(ToolError, match="non-empty 'text'"):
        await line_item_parser_worker({})
    with pytest.raises(ToolError, match="'items', a list"):
        await expense_categorizer_worker({"items": "Latte"})


class DiesAfter:
    """A reply function that answers `answers` requests, then stops its server (from a thread: as if killed)."""

    def __init__(self, answers: int, responder: Callable[[RecordedRequest], Reply]) -> None:
        self.answers = answers
        self.responder = responder
        self.server: FakeLLMServer | None = None
        self.killer: threading.Thread | None = None
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._count += 1
            if self._count <= self.answers:
                return self.responder(request)
            if self.killer is None and self.server is not None:
                self.killer = threading.Thread(target=self.server.close)
                self.killer.start()
        return Reply(data={"answers": []}, delay_s=5)  # never sent: the server goes away first


async def test_killing_the_server_mid_batch_loses_nothing_and_modes_show_who_answered(
    isolated_settings: Settings,
) -> None:
    reply = DiesAfter(2, SmallModelResponder())
    with FakeLLMServer(default=reply) as server:
        reply.server = server
        settings = isolated_settings.model_copy(
            update={
                "use_small_model": True,
                "small_model_backend": "ollama",
                "ollama_api_url": server.base_url,
                "small_model_cascade": ("keyword", "llm"),
                "small_model_max_retries": 0,
            }
        )
        receipts = sorted((REPO / "examples" / "receipts").glob("*.txt"))
        rows: list[Any] = []
        with use_settings(settings):
            summary = await run_batch(
                load_plan(PLAN, default_registry()), receipts, "image_path", concurrency=1, on_document=rows.append
            )
    assert reply.killer is not None  # the server was killed mid-batch
    reply.killer.join()
    assert summary.succeeded == len(receipts) == 5 and summary.failed == 0
    by_doc = {Path(r.document).name: r for r in rows}
    assert by_doc["cafe.txt"].modes["parse"] == [OLLAMA] and OLLAMA in by_doc["cafe.txt"].modes["categorize"]
    for name in ("hardware.txt", "office_supply.txt", "restaurant.txt"):
        assert by_doc[name].modes["parse"] == ["keyword"]
        assert set(by_doc[name].modes["categorize"]) == {"keyword"}
    assert all(json.dumps(r.output) for r in rows)  # every document has its report


async def test_the_one_text_calls_of_a_for_each_step_share_batched_model_calls(
    fake: FakeLLMServer, isolated_settings: Settings
) -> None:
    plan = {
        "goal": "sentiment of each review",
        "inputs": {"path": {"type": "string"}},
        "steps": [
            {"id": "fetch", "tool": "load_records", "args": {"path": "input:path"}},
            {
                "id": "mood",
                "tool": "small_model",
                "for_each": "step:fetch",
                "args": {"task": "sentiment", "text": "item:text"},
            },
        ],
    }
    feedback = REPO / "examples" / "feedback" / "feedback.jsonl"
    n = len(feedback.read_text().splitlines())
    with use_settings(
        isolated_settings,
        use_small_model=True,
        small_model_backend="ollama",
        ollama_api_url=fake.base_url,
        small_model_cascade=("llm",),
        small_model_batch_size=8,
        small_model_gather_ms=300,  # generous: the elements start together, but the machine may be busy
    ):
        result = await execute_plan(plan, {"path": str(feedback)})
    assert result.ok, result.error
    assert [r["mode"] for r in result.steps["mood"].output] == [OLLAMA] * n  # every element answered by the model
    calls = len(fake.requests)
    assert calls < n / 2, f"{n} one-text calls made {calls} model calls"  # without gathering: one call each
    assert result.steps["mood"].counts[f"tier:{OLLAMA}"] == n
