"""The fake server itself: scripting, routing, recording, pacing and concurrency."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.errors import ModelError
from orchestrator.providers import Message, OllamaChatModel
from orchestrator.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, echo

pytestmark = pytest.mark.anyio


async def test_a_reply_function_makes_the_fake_a_deterministic_model(fake: FakeLLMServer, model_for: Any) -> None:
    def shout(request: RecordedRequest) -> Any:
        if request.json_schema is not None:
            return {"answer": request.last_user_text.upper()}
        return request.last_user_text.upper()

    fake.enqueue(shout, shout)
    model = model_for("anthropic")
    assert (await model.complete([Message.user("quiet")])).text == "QUIET"
    structured = await model.complete([Message.user("quiet")], json_schema={"type": "object"})
    assert structured.json_value() == {"answer": "QUIET"}


async def test_the_default_answers_when_the_queue_is_empty() -> None:
    with FakeLLMServer(default=echo) as server:
        async with OllamaChatModel("phi3", base_url=server.base_url) as model:
            assert (await model.complete([Message.user("hello")])).text == "echo: hello"
            assert (await model.complete([Message.user("again")])).text == "echo: again"


async def test_an_empty_queue_is_a_clear_non_retryable_error(fake: FakeLLMServer, model_for: Any) -> None:
    with pytest.raises(ModelError, match="no scripted reply left") as caught:
        await model_for("openai").complete([Message.user("hi")])
    assert caught.value.retryable is False
    assert len(fake.requests) == 1


async def test_a_reply_function_that_raises_is_reported_as_a_server_error(fake: FakeLLMServer, model_for: Any) -> None:
    def broken(request: RecordedRequest) -> str:
        raise RuntimeError("bug in the test's model")

    fake.enqueue(broken)
    with pytest.raises(ModelError, match="bug in the test's model") as caught:
        await model_for("ollama", max_retries=0).complete([Message.user("hi")])
    assert caught.value.status_code == 500


async def test_ollama_tags_and_generate_speak_the_native_api() -> None:
    with FakeLLMServer(models=["phi3", "llama3.1:8b"]) as server:
        server.enqueue("plain answer", "streamed answer")
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            tags = (await client.get("/api/tags")).json()
            assert [m["name"] for m in tags["models"]] == ["phi3:latest", "llama3.1:8b"]
            plain = (await client.post("/api/generate", json={"model": "phi3", "prompt": "hi", "stream": False})).json()
            assert plain["response"] == "plain answer"
            assert plain["done"] is True
            assert plain["prompt_eval_count"] > 0
            async with client.stream(
                "POST", "/api/generate", json={"model": "phi3:latest", "prompt": "hi"}
            ) as streamed:
                assert streamed.headers["content-type"] == "application/x-ndjson"
                lines = [json.loads(line) async for line in streamed.aiter_lines() if line]
    assert "".join(line["response"] for line in lines) == "streamed answer"
    assert [line["done"] for line in lines][-2:] == [False, True]
    assert lines[-1]["eval_count"] == len(lines) - 1


async def test_streams_go_out_in_four_character_tokens_at_the_configured_rate() -> None:
    text = "a receipt line with some words on it"
    with FakeLLMServer(tokens_per_s=500) as server:
        server.enqueue(text)
        deltas: list[str] = []
        async with OllamaChatModel("phi3", base_url=server.base_url) as model:
            completion = await model.complete([Message.user("hi")], on_delta=deltas.append)
    assert deltas == [text[i : i + 4] for i in range(0, len(text), 4)]
    assert completion.usage.output_tokens == len(deltas)


async def test_requests_are_answered_concurrently(fake: FakeLLMServer, model_for: Any) -> None:
    parties = 3
    barrier = threading.Barrier(parties, timeout=5)

    def wait_for_everyone(request: RecordedRequest) -> str:
        barrier.wait()  # only returns once all three requests are in flight at the same time
        return f"done: {request.last_user_text}"

    fake.enqueue(*[wait_for_everyone] * parties)
    model = model_for("openai", max_retries=0)
    answers: list[str] = []

    async def ask(n: int) -> None:
        answers.append((await model.complete([Message.user(str(n))])).text)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for n in range(parties):
                tg.start_soon(ask, n)
    assert sorted(answers) == ["done: 0", "done: 1", "done: 2"]


async def test_a_non_streamed_reply_can_be_cut_halfway(fake: FakeLLMServer, model_for: Any) -> None:
    fake.enqueue(Reply("a long answer " * 20, cut_after=1))
    with pytest.raises(ModelError) as caught:
        await model_for("ollama", max_retries=0).complete([Message.user("hi")])
    assert caught.value.retryable is True


def test_the_base_url_needs_a_running_server() -> None:
    server = FakeLLMServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    server.start()
    try:
        assert server.openai_url.startswith("http://127.0.0.1:")
        assert server.openai_url.endswith("/v1")
    finally:
        server.close()
    server.close()  # closing twice is harmless
