"""Ollama specifics: the httpx seam, our own bounded retries, and errors that say what to do."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from orchestrator.errors import ModelError
from orchestrator.providers import Message, OllamaChatModel
from orchestrator.testing.fake_llm import Failure, FakeLLMServer

pytestmark = pytest.mark.anyio

ASK = [Message.user("Categorise: bananas")]


def _ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def test_a_mock_transport_replaces_the_network_entirely() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        body = {"model": "phi3", "message": {"role": "assistant", "content": '{"category": "food"}'}, "done": True}
        return httpx.Response(200, json=body | {"done_reason": "stop", "prompt_eval_count": 11, "eval_count": 7})

    async with OllamaChatModel(
        "phi3", base_url="http://ollama.invalid:11434", transport=httpx.MockTransport(handler)
    ) as model:
        completion = await model.complete(ASK, json_schema={"type": "object"}, temperature=0.2, max_tokens=64)
    assert completion.json_value() == {"category": "food"}
    assert (completion.usage.input_tokens, completion.usage.output_tokens, completion.usage.cost_usd) == (11, 7, 0.0)
    assert seen == [
        {
            "model": "phi3",
            "messages": [{"role": "user", "content": "Categorise: bananas"}],
            "stream": False,
            "options": {"temperature": 0.2, "num_predict": 64},
            "format": {"type": "object"},
        }
    ]


async def test_model_options_are_sent_with_every_call_under_the_per_call_ones() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"message": {"content": "ok"}, "done": True})

    transport = httpx.MockTransport(handler)
    async with OllamaChatModel("phi3", transport=transport, options={"num_ctx": 8192, "temperature": 0.9}) as model:
        await model.complete(ASK, temperature=0.0)
    assert seen[0]["options"] == {"num_ctx": 8192, "temperature": 0.0}


async def test_an_error_line_inside_a_stream_is_a_model_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        lines = _ndjson(
            {"message": {"content": "Ban"}, "done": False}, {"error": "llama runner process has terminated"}
        )
        return httpx.Response(200, content=lines, headers={"content-type": "application/x-ndjson"})

    async with OllamaChatModel("phi3", transport=httpx.MockTransport(handler)) as model:
        with pytest.raises(ModelError, match="llama runner process has terminated"):
            await model.complete(ASK, on_delta=lambda _: None)


async def test_a_body_that_is_not_json_is_a_model_error() -> None:
    async with OllamaChatModel(
        "phi3", transport=httpx.MockTransport(lambda _: httpx.Response(200, text="<html>"))
    ) as model:
        with pytest.raises(ModelError, match="not JSON"):
            await model.complete(ASK)


async def test_a_client_passed_in_is_used_and_left_open() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"message": {"content": "ok"}, "done": True}))
    async with httpx.AsyncClient(transport=transport) as client:
        async with OllamaChatModel("phi3", client=client) as model:
            assert (await model.complete(ASK)).text == "ok"
        assert not client.is_closed


async def test_a_refused_connection_is_retried_then_names_ollama_api_url(sleeps: list[float]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OllamaChatModel("phi3", base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff_s=0.01) as model:
        with pytest.raises(ModelError, match="OLLAMA_API_URL") as caught:
            await model.complete(ASK)
    assert caught.value.retryable is True
    assert len(sleeps) == 2
    assert all(0.0075 <= delay <= 0.02 for delay in sleeps)  # backoff with jitter: 0.01, then 0.02, less up to 25%


async def test_a_model_that_is_not_pulled_says_how_to_pull_it() -> None:
    with FakeLLMServer(models=["phi3"]) as server:
        async with OllamaChatModel("llama3.1", base_url=server.base_url) as model:
            with pytest.raises(ModelError, match="ollama pull llama3.1") as caught:
                await model.complete(ASK)
    assert caught.value.status_code == 404
    assert caught.value.retryable is False


async def test_a_retry_after_longer_than_the_limit_is_raised_at_once(fake: FakeLLMServer, sleeps: list[float]) -> None:
    fake.enqueue(Failure(429, retry_after=3600), "unused")
    async with OllamaChatModel("phi3", base_url=fake.base_url, max_retry_after_s=60) as model:
        with pytest.raises(ModelError) as caught:
            await model.complete(ASK)
    assert caught.value.status_code == 429
    assert sleeps == []
    assert len(fake.requests) == 1


async def test_a_stream_cut_before_any_delta_is_retried(fake: FakeLLMServer) -> None:
    from orchestrator.testing.fake_llm import Reply

    fake.enqueue(Reply("never seen", cut_after=0), "second try")
    deltas: list[str] = []
    async with OllamaChatModel("phi3", base_url=fake.base_url, backoff_s=0.01) as model:
        completion = await model.complete(ASK, on_delta=deltas.append)
    assert completion.text == "second try"
    assert "".join(deltas) == "second try"
    assert len(fake.requests) == 2
