"""Gathering: requests of one key that arrive together share one answer call; nobody waits on a failed one."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.small_model_worker.gather import Gatherer

pytestmark = pytest.mark.anyio


class Upper:
    """Answers texts with their upper case; records each call; the first `fail` calls raise."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def __call__(self, texts: list[str]) -> dict[str, str]:
        self.calls.append(texts)
        if len(self.calls) <= self.fail:
            raise RuntimeError("the model fell over")
        return {text: text.upper() for text in texts}


async def test_requests_of_one_key_share_a_call_and_each_gets_its_own_answers() -> None:
    gatherer: Gatherer[str, str] = Gatherer(window_s=0.2)
    answer = Upper()
    got: dict[str, dict[str, str]] = {}

    async def ask(key: str, texts: list[str]) -> None:
        got[texts[0]] = await gatherer.run(key, texts, answer)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, "k", ["a", "b"])
        group.start_soon(ask, "k", ["c"])
        group.start_soon(ask, "k", ["b2", "a"])
        group.start_soon(ask, "other", ["z"])
    assert got == {"a": {"a": "A", "b": "B"}, "c": {"c": "C"}, "b2": {"b2": "B2", "a": "A"}, "z": {"z": "Z"}}
    assert sorted(answer.calls) == [["a", "b", "c", "b2"], ["z"]]  # one call per key, each text once


async def test_when_the_shared_call_fails_the_others_ask_on_their_own() -> None:
    gatherer: Gatherer[str, str] = Gatherer(window_s=0.2)
    answer = Upper(fail=1)
    results: list[object] = []

    async def ask(texts: list[str]) -> None:
        try:
            results.append(await gatherer.run("k", texts, answer))
        except RuntimeError as exc:
            results.append(str(exc))

    async with anyio.create_task_group() as group:
        group.start_soon(ask, ["a"])
        await anyio.sleep(0.05)  # "a" is gathering
        group.start_soon(ask, ["b"])
    assert results == ["the model fell over", {"b": "B"}]  # the failure is the first request's own
    assert answer.calls == [["a", "b"], ["b"]]


async def test_without_a_window_every_request_makes_its_own_call() -> None:
    gatherer: Gatherer[str, str] = Gatherer(window_s=0)
    answer = Upper()
    async with anyio.create_task_group() as group:
        for text in "abc":
            group.start_soon(gatherer.run, "k", [text], answer)
    assert sorted(answer.calls) == [["a"], ["b"], ["c"]]
