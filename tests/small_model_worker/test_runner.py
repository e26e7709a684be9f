"""The model runner's throughput and safety: parallel calls under the limit, and a breaker for a dead server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from orchestrator.context import Usage
from orchestrator.errors import ModelError
from orchestrator.providers.base import Message
from orchestrator.settings import Settings
from orchestrator.small_model_worker import Generated, JsonBackend, SmallModelWorker
from orchestrator.small_model_worker.runner import CircuitBreaker, ModelRunner

pytestmark = pytest.mark.anyio


class HeldBackend:
    """Answers "beverage" for every item, but only once `release` is set; counts calls in flight."""

    name = "held:test"
    local = True

    def __init__(self, expect_in_flight: int) -> None:
        self.in_flight = 0
        self.most = 0
        self.expect = expect_in_flight
        self.all_in = anyio.Event()
        self.release = anyio.Event()

    async def generate_json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        *,
        schema_name: str = "",
        max_tokens: int | None = None,
    ) -> Generated:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight == self.expect:
            self.all_in.set()
        await self.release.wait()
        self.in_flight -= 1
        n = schema["properties"]["answers"]["maxItems"]
        return Generated(json.dumps({"answers": [{"label": "beverage", "confidence": 0.9}] * n}), Usage(calls=1))

    async def aclose(self) -> None:
        pass


async def test_batches_run_in_parallel_up_to_the_concurrency_limit(isolated_settings: Settings) -> None:
    backend = HeldBackend(expect_in_flight=3)
    assert isinstance(backend, JsonBackend)
    worker = SmallModelWorker(
        generator=backend, settings=isolated_settings, cascade=("llm",), batch_size=2, concurrency=3, cache=False
    )
    results: list[Any] = []

    async def classify() -> None:
        results.extend(await worker.classify([f"drink {i}" for i in range(10)], ["beverage", "food"]))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(classify)
            await backend.all_in.wait()  # three calls are held mid-flight at once...
            assert backend.in_flight == 3
            backend.release.set()  # ...and only then may any finish
    assert backend.most == 3  # five batches, never more than three at a time
    assert [r.label for r in results] == ["beverage"] * 10 and results[0].mode == "held:test"


class DeadBackend:
    name = "dead:test"
    local = True

    def __init__(self) -> None:
        self.calls = 0

    async def generate_json(self, messages: Sequence[Message], schema: dict[str, Any], **_: Any) -> Generated:
        self.calls += 1
        raise ModelError("connection refused", retryable=True)

    async def aclose(self) -> None:
        pass


async def test_after_failures_in_a_row_the_breaker_stops_calling_a_dead_server() -> None:
    backend = DeadBackend()
    runner = ModelRunner(backend, batch_size=1, concurrency=1, breaker=CircuitBreaker(failures=3, cooldown_s=60))
    answers = await runner.label("classify", [f"item {i}" for i in range(6)], ["a", "b"], {})
    assert answers == [None] * 6  # every item abstains: the keywords will answer them
    assert backend.calls == 3  # the last three failed fast, without a call
    with pytest.raises(ModelError, match="not calling it"):
        await runner.receipt("TOTAL 1.00")


class EchoBackend:
    """Labels each item by the label its text starts with ("beverage 3" -> beverage); records items per call."""

    name = "echo:test"
    local = True

    def __init__(self, hold: anyio.Event | None = None) -> None:
        self.calls: list[list[str]] = []
        self.hold = hold

    async def generate_json(self, messages: Sequence[Message], schema: dict[str, Any], **_: Any) -> Generated:
        payload = json.loads(messages[-1].content.split("INPUT:\n", 1)[1].split("\n\nSCHEMA:", 1)[0])
        self.calls.append(payload["items"])
        if self.hold is not None:
            await self.hold.wait()
        answers = [{"label": text.split()[0], "confidence": 0.9} for text in payload["items"]]
        return Generated(json.dumps({"answers": answers}), Usage(calls=1))

    async def aclose(self) -> None:
        pass


async def _one_text_each(runner: ModelRunner, texts: list[str], labels: list[str]) -> dict[str, Any]:
    """`label` called once per text, all at once, as the elements of a for_each step call it."""
    got: dict[str, Any] = {}

    async def one(text: str) -> None:
        got[text] = (await runner.label("classify", [text], labels, {}))[0]

    async with anyio.create_task_group() as group:
        for text in texts:
            group.start_soon(one, text)
    return got


async def test_one_text_requests_arriving_together_share_batched_calls() -> None:
    backend = EchoBackend()
    runner = ModelRunner(backend, batch_size=4, concurrency=2, gather_s=0.2)
    texts = [f"{label} {i}" for i in range(5) for label in ("beverage", "food")]

    with anyio.fail_after(10):
        got = await _one_text_each(runner, texts, ["beverage", "food"])

    assert got == {text: (text.split()[0], 0.9) for text in texts}  # each request gets its own answer back
    assert sorted(len(call) for call in backend.calls) == [2, 4, 4]  # ten requests, three calls
    assert sorted(t for call in backend.calls for t in call) == sorted(texts)  # each text asked once


async def test_requests_for_other_labels_are_not_mixed_into_one_call() -> None:
    backend = EchoBackend()
    runner = ModelRunner(backend, batch_size=8, gather_s=0.2)
    got: dict[str, Any] = {}

    async def one(text: str, labels: list[str]) -> None:
        got[text] = await runner.label("classify", [text], labels, {})

    async with anyio.create_task_group() as group:
        group.start_soon(one, "beverage a", ["beverage", "x"])
        group.start_soon(one, "food b", ["food", "y"])
    assert got == {"beverage a": [("beverage", 0.9)], "food b": [("food", 0.9)]}
    assert sorted(backend.calls) == [["beverage a"], ["food b"]]


async def test_without_a_gathering_window_each_request_makes_its_own_call() -> None:
    backend = EchoBackend()
    runner = ModelRunner(backend, batch_size=8, gather_s=0)
    got = await _one_text_each(runner, [f"food {i}" for i in range(4)], ["food"])
    assert len(got) == 4 and len(backend.calls) == 4


async def test_when_the_gathering_request_is_cancelled_the_others_ask_alone() -> None:
    hold = anyio.Event()
    backend = EchoBackend(hold=hold)
    runner = ModelRunner(backend, batch_size=8, gather_s=0.05)
    answers: list[Any] = []

    async def follower() -> None:
        answers.append(await runner.label("classify", ["food later"], ["food"], {}))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer:
            with anyio.CancelScope() as leader_scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(runner.label, "classify", ["food first"], ["food"], {})
                    await anyio.sleep(0.01)  # the first request is gathering
                    outer.start_soon(follower)
                    while not backend.calls:  # the shared call is out, held by the backend
                        await anyio.sleep(0.01)
                    assert backend.calls == [["food first", "food later"]]
                    leader_scope.cancel()  # the request that made the call goes away...
            hold.set()
    assert answers == [[("food", 0.9)]]  # ...and the other asked again on its own
    assert backend.calls[-1] == ["food later"]
