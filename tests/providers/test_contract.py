"""The ChatModel contract, checked for every provider through its real SDK or client against the fake server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.errors import ConfigurationError, ModelError
from orchestrator.providers import ChatModel, Message, cost_usd
from orchestrator.testing.fake_llm import Failure, FakeLLMServer, Reply

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"category": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["category", "confidence"],
}
ASK = [Message.system("You classify receipt items."), Message.user("Classify: 2x espresso")]


async def test_every_adapter_is_a_chat_model(provider: str, model_for: Any) -> None:
    model = model_for(provider)
    assert isinstance(model, ChatModel)
    assert model.provider == provider


async def test_a_plain_completion_returns_the_text_and_what_was_asked(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue("food")
    completion = await model_for(provider).complete(ASK)
    assert completion.text == "food"
    assert completion.provider == provider
    assert completion.structured is False
    assert completion.finish_reason in {"stop", "end_turn"}
    assert completion.usage.calls == 1
    assert completion.usage.input_tokens > 0
    assert completion.usage.output_tokens > 0
    request = fake.last_request
    assert request.stream is False
    assert request.messages == [
        {"role": "system", "content": "You classify receipt items."},
        {"role": "user", "content": "Classify: 2x espresso"},
    ]


async def test_structured_output_is_requested_natively_and_comes_back_as_json(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue({"category": "beverage", "confidence": 0.93})
    completion = await model_for(provider).complete(ASK, json_schema=SCHEMA, schema_name="item")
    assert completion.json_value() == {"category": "beverage", "confidence": 0.93}
    assert completion.structured is True
    body = fake.last_request.body
    if provider == "anthropic":
        assert body["tools"] == [
            {"name": "item", "description": body["tools"][0]["description"], "input_schema": SCHEMA}
        ]
        assert body["tool_choice"] == {"type": "tool", "name": "item"}
        assert completion.finish_reason == "tool_use"
    elif provider == "ollama":
        assert body["format"] == SCHEMA
    else:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "item", "schema": SCHEMA, "strict": False},
        }


async def test_streaming_hands_each_delta_to_on_delta_and_reassembles_the_text(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    text = "Espresso is a beverage; the croissant is food."
    fake.enqueue(text)
    deltas: list[str] = []
    completion = await model_for(provider).complete(ASK, on_delta=deltas.append)
    assert len(deltas) > 3
    assert "".join(deltas) == text
    assert completion.text == text
    assert completion.first_delta_s is not None
    assert completion.usage.output_tokens == len(deltas)
    assert completion.usage.input_tokens > 0
    assert fake.last_request.stream is True


async def test_structured_streaming_deltas_are_the_json_document_being_written(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    plan = {"steps": [{"id": "ocr", "tool": "receipt_ocr"}, {"id": "parse", "tool": "line_item_parser"}]}
    fake.enqueue(plan)
    deltas: list[str] = []
    completion = await model_for(provider).complete(ASK, json_schema=SCHEMA, on_delta=deltas.append)
    assert len(deltas) > 3
    assert json.loads("".join(deltas)) == plan
    assert completion.json_value() == plan


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_usage_and_cost_come_from_what_the_provider_reports(
    provider: str, fake: FakeLLMServer, model_for: Any, stream: bool, priced_as: dict[str, str]
) -> None:
    fake.enqueue(Reply("food", input_tokens=1200, output_tokens=300))
    deltas: list[str] = []
    completion = await model_for(provider).complete(ASK, on_delta=deltas.append if stream else None)
    usage = completion.usage
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 1200, 300)
    assert usage.cost_usd == pytest.approx(cost_usd(priced_as[provider], 1200, 300))
    if provider in {"openai", "azure_openai", "anthropic"}:
        assert usage.cost_usd > 0


async def test_a_429_is_retried_after_the_wait_the_server_asked_for(
    provider: str, fake: FakeLLMServer, model_for: Any, sleeps: list[float]
) -> None:
    fake.enqueue(Failure(429, retry_after=0.05), "food")
    completion = await model_for(provider).complete(ASK)
    assert completion.text == "food"
    assert len(fake.requests) == 2
    assert sleeps == [0.05]


@pytest.mark.parametrize("status", [500, 429])
async def test_a_persistent_failure_is_a_model_error_with_its_status_after_bounded_retries(
    provider: str, fake: FakeLLMServer, model_for: Any, sleeps: list[float], status: int
) -> None:
    fake.enqueue(*[Failure(status, retry_after=0.01)] * 5)
    with pytest.raises(ModelError) as caught:
        await model_for(provider, max_retries=2).complete(ASK)
    assert caught.value.status_code == status
    assert caught.value.retryable is True
    assert caught.value.body
    assert len(fake.requests) == 3
    assert sleeps == [0.01, 0.01]
    assert fake.pending == 2


async def test_a_client_error_is_raised_at_once_and_not_retryable(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue(Failure(400, "messages: at least one message is required"), "unused")
    with pytest.raises(ModelError, match="at least one message") as caught:
        await model_for(provider).complete(ASK)
    assert caught.value.status_code == 400
    assert caught.value.retryable is False
    assert len(fake.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_a_reply_slower_than_the_timeout_is_a_retryable_model_error(
    provider: str, fake: FakeLLMServer, model_for: Any, stream: bool
) -> None:
    fake.enqueue(Reply("too late", delay_s=5.0))
    model = model_for(provider, max_retries=0)
    with pytest.raises(ModelError, match="timed out") as caught:
        await model.complete(ASK, timeout_s=0.5, on_delta=(lambda _: None) if stream else None)
    assert caught.value.retryable is True
    assert caught.value.status_code is None


async def test_a_stream_that_stalls_longer_than_the_timeout_is_a_retryable_model_error(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue(Reply("one token, then nothing for a while", tokens_per_s=0.5))
    deltas: list[str] = []
    with pytest.raises(ModelError, match="timed out") as caught:
        await model_for(provider, max_retries=0).complete(ASK, timeout_s=0.3, on_delta=deltas.append)
    assert caught.value.retryable is True
    assert deltas == ["one "]


async def test_a_stream_cut_mid_way_is_a_retryable_model_error_never_a_partial_answer(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue(Reply("x" * 100, cut_after=3), "a second answer that must not be asked for")
    deltas: list[str] = []
    with pytest.raises(ModelError) as caught:
        await model_for(provider).complete(ASK, on_delta=deltas.append)
    assert caught.value.retryable is True
    assert "".join(deltas) == "x" * 12
    assert len(fake.requests) == 1


async def test_a_stream_that_ends_before_the_model_finished_is_a_model_error(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue(Reply("x" * 100, cut_after=3, cut_cleanly=True))
    with pytest.raises(ModelError, match="ended before the model finished") as caught:
        await model_for(provider).complete(ASK, on_delta=lambda _: None)
    assert caught.value.retryable is True


async def test_an_exception_from_on_delta_reaches_the_caller_unchanged(
    provider: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue("some streamed text")

    def consumer(piece: str) -> None:
        raise LookupError("the consumer failed")

    with pytest.raises(LookupError, match="the consumer failed"):
        await model_for(provider).complete(ASK, on_delta=consumer)


@pytest.mark.parametrize(
    ("keyed_provider", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("azure_openai", "AZURE_OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("openai_compatible", "SMALL_MODEL_API_KEY"),
    ],
)
async def test_a_rejected_key_is_a_configuration_error_naming_the_variable_and_the_argument(
    keyed_provider: str, variable: str, fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue("unused")
    with pytest.raises(ConfigurationError, match="HTTP 401") as caught:
        await model_for(keyed_provider, api_key="sk-wrong").complete(ASK)
    assert variable in str(caught.value)
    assert "api_key=" in str(caught.value)
    assert len(fake.requests) == 1
