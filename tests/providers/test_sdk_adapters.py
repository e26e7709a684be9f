"""What the OpenAI, Azure OpenAI and Anthropic adapters put on the wire, beyond the shared contract."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.providers import Message
from orchestrator.providers.anthropic import AnthropicChatModel, accepts_temperature
from orchestrator.providers.openai import OpenAIChatModel
from orchestrator.testing.fake_llm import Failure, FakeLLMServer

pytestmark = pytest.mark.anyio

ASK = [Message.system("Plan with the tools given."), Message.user("Process this receipt")]


async def test_openai_asks_for_max_completion_tokens_and_compatible_servers_for_max_tokens(
    fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue("a", "b")
    await model_for("openai").complete(ASK, max_tokens=50)
    assert fake.last_request.body["max_completion_tokens"] == 50
    await model_for("openai_compatible").complete(ASK, max_tokens=50)
    assert fake.last_request.body["max_tokens"] == 50
    assert "max_completion_tokens" not in fake.last_request.body


@pytest.mark.parametrize(("model", "sent"), [("gpt-4o", True), ("o4-mini", False), ("gpt-5-mini", False)])
async def test_openai_sends_temperature_except_to_reasoning_models(fake: FakeLLMServer, model: str, sent: bool) -> None:
    fake.enqueue("ok")
    async with OpenAIChatModel(model, api_key="sk-test-key", base_url=fake.openai_url) as chat:
        await chat.complete(ASK, temperature=0.3)
    assert fake.last_request.body.get("temperature") == (0.3 if sent else None)


async def test_openai_streaming_asks_for_the_final_usage_chunk(fake: FakeLLMServer, model_for: Any) -> None:
    fake.enqueue("streamed")
    await model_for("openai").complete(ASK, on_delta=lambda _: None)
    assert fake.last_request.body["stream_options"] == {"include_usage": True}


async def test_azure_calls_the_deployment_with_the_api_key_header_and_prices_the_model_behind_it(
    fake: FakeLLMServer, model_for: Any
) -> None:
    fake.enqueue("azure says hi")
    completion = await model_for("azure_openai").complete(ASK)
    request = fake.last_request
    assert request.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == "sk-test-key"
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.usage.cost_usd > 0


async def test_anthropic_sends_system_messages_as_the_system_prompt(fake: FakeLLMServer, model_for: Any) -> None:
    fake.enqueue("ok")
    await model_for("anthropic").complete(ASK)
    body = fake.last_request.body
    assert body["system"] == "Plan with the tools given."
    assert body["messages"] == [{"role": "user", "content": "Process this receipt"}]
    assert body["max_tokens"] == 8192
    assert fake.last_request.headers["anthropic-version"]


@pytest.mark.parametrize(("model", "sent"), [("claude-sonnet-4-6", True), ("claude-sonnet-5", False)])
async def test_anthropic_sends_temperature_only_to_models_that_accept_it(
    fake: FakeLLMServer, model: str, sent: bool
) -> None:
    fake.enqueue("ok")
    async with AnthropicChatModel(model, api_key="sk-test-key", base_url=fake.base_url) as chat:
        await chat.complete(ASK, temperature=0.3)
    assert ("temperature" in fake.last_request.body) is sent
    if sent:
        assert fake.last_request.body["temperature"] == 0.3


@pytest.mark.parametrize(
    ("model", "accepts"),
    [
        ("claude-3-5-sonnet-20241022", True),
        ("claude-sonnet-4-5-20250929", True),
        ("claude-sonnet-4-6", True),
        ("claude-haiku-4-5", True),
        ("claude-opus-4-7", False),
        ("claude-sonnet-5", False),
        ("claude-sonnet-5-5", False),
        ("claude-next", False),
    ],
)
def test_which_claude_models_accept_temperature(model: str, accepts: bool) -> None:
    assert accepts_temperature(model) is accepts


async def test_anthropic_overloaded_529_is_retried(fake: FakeLLMServer, model_for: Any, sleeps: list[float]) -> None:
    fake.enqueue(Failure(529, retry_after=0.01), "after the overload")
    assert (await model_for("anthropic").complete(ASK)).text == "after the overload"
    assert sleeps == [0.01]


def test_a_missing_key_is_caught_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIChatModel("gpt-4o")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicChatModel("claude-sonnet-4-6")
    with pytest.raises(ConfigurationError, match="base_url="):
        OpenAIChatModel("phi3", provider="openai_compatible")
