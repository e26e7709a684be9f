"""make_chat_model: explicit arguments over settings, and errors that name both remedies."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.providers import PROVIDERS, ChatModel, Message, make_chat_model
from orchestrator.settings import Settings, use_settings
from orchestrator.testing.fake_llm import FakeLLMServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("provider", "settings", "needle"),
    [
        ("openai", Settings(), "set OPENAI_API_KEY or pass api_key="),
        ("anthropic", Settings(), "set ANTHROPIC_API_KEY or pass api_key="),
        ("openai_compatible", Settings(), "set SMALL_MODEL_BASE_URL or pass base_url="),
        ("azure_openai", Settings(azure_openai_api_key="k"), "set AZURE_OPENAI_ENDPOINT or pass endpoint="),
        ("azure_openai", Settings(azure_openai_endpoint="https://x.openai.azure.com"), "set AZURE_OPENAI_API_KEY"),
        (
            "azure_openai",
            Settings(azure_openai_endpoint="https://x.openai.azure.com", azure_openai_api_key="k"),
            "set AZURE_OPENAI_DEPLOYMENT or pass deployment=",
        ),
    ],
)
def test_missing_configuration_names_the_variable_and_the_argument(
    provider: str, settings: Settings, needle: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_chat_model(provider, settings=settings)
    assert needle in str(caught.value)


def test_an_unknown_provider_suggests_the_closest_and_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_chat_model("opnai", settings=Settings())
    message = str(caught.value)
    assert "did you mean 'openai'?" in message
    for name in PROVIDERS:
        assert name in message


def test_an_unknown_option_is_a_configuration_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown option temprature for provider 'ollama'; valid: .*backoff_s"):
        make_chat_model("ollama", settings=Settings(), temprature=0.2)


async def test_provider_names_are_forgiving_about_case_and_dashes() -> None:
    model: Any = make_chat_model("OpenAI-Compatible", settings=Settings(), base_url="http://127.0.0.1:9/v1")
    try:
        assert model.provider == "openai_compatible"
    finally:
        await model.aclose()


async def test_settings_supply_what_the_arguments_leave_out(fake: FakeLLMServer) -> None:
    settings = Settings(openai_api_key="sk-test-key", openai_base_url=fake.openai_url)
    fake.enqueue("from settings")
    model = make_chat_model("openai", settings=settings)
    try:
        assert (await model.complete([Message.user("hi")])).text == "from settings"
    finally:
        await model.aclose()  # type: ignore[attr-defined]
    assert fake.last_request.headers["authorization"] == "Bearer sk-test-key"


async def test_explicit_arguments_win_over_settings(fake: FakeLLMServer) -> None:
    settings = Settings(anthropic_api_key="sk-from-settings", anthropic_base_url="http://127.0.0.1:9")
    fake.enqueue("explicit")
    model = make_chat_model(
        "anthropic", "claude-haiku-4-5", settings=settings, api_key="sk-test-key", base_url=fake.base_url
    )
    try:
        assert (await model.complete([Message.user("hi")])).text == "explicit"
    finally:
        await model.aclose()  # type: ignore[attr-defined]


async def test_without_settings_the_pinned_ones_are_used(fake: FakeLLMServer) -> None:
    fake.enqueue("pinned")
    with use_settings(Settings(), ollama_api_url=fake.base_url):
        model = make_chat_model("ollama", "phi3")
    try:
        assert (await model.complete([Message.user("hi")])).text == "pinned"
    finally:
        await model.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("provider", "settings", "expected"),
    [
        ("openai", Settings(openai_api_key="k"), "gpt-4o"),
        ("openai", Settings(openai_api_key="k", planner_provider="openai", planner_model="gpt-4.1"), "gpt-4.1"),
        ("anthropic", Settings(anthropic_api_key="k"), "claude-sonnet-5-5"),
        ("ollama", Settings(), "llama3.1"),
        ("ollama", Settings(planner_model="qwen2.5:14b"), "qwen2.5:14b"),
        ("ollama", Settings(planner_model="gpt-4o"), "llama3.1"),  # a hosted id is not an Ollama model
        ("ollama", Settings(planner_provider="openai", planner_model="mistral"), "llama3.1"),
        ("openai_compatible", Settings(small_model_base_url="http://127.0.0.1:8000/v1"), "phi3"),
        (
            "azure_openai",
            Settings(azure_openai_endpoint="https://x", azure_openai_api_key="k", azure_openai_deployment="prod"),
            "prod",
        ),
    ],
)
async def test_default_models(provider: str, settings: Settings, expected: str) -> None:
    model: Any = make_chat_model(provider, settings=settings)
    try:
        assert isinstance(model, ChatModel)
        assert model.model == expected
    finally:
        await model.aclose()
