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
