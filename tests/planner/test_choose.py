"""Which planner is used when the caller does not say, and the line that says why."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.planner.choose import choose_provider, pick_local_model, probe_ollama
from orchestrator.settings import Settings
from orchestrator.testing.fake_llm import FakeLLMServer

from .conftest import CLOSED_PORT_URL

pytestmark = pytest.mark.anyio


def settings(**values: object) -> Settings:
    values.setdefault("ollama_api_url", CLOSED_PORT_URL)
    return Settings.model_validate(values)


async def test_an_explicit_provider_wins_over_everything() -> None:
    choice = await choose_provider(settings(openai_api_key="k", planner_provider="ollama"), provider="anthropic")
    assert (choice.provider, choice.model, choice.reason) == ("anthropic", "claude-sonnet-5-5", "chosen explicitly")


@pytest.mark.parametrize(
    ("provider", "planner_model", "model"),
    [
        ("openai", "gpt-4.1", "gpt-4.1"),
        ("anthropic", "gpt-4.1", "claude-sonnet-5-5"),  # a PLANNER_MODEL meant for another provider is not sent
        ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5"),
        ("ollama", "qwen2.5:14b", "qwen2.5:14b"),
        ("ollama", "gpt-4o", "llama3.1"),
    ],
)
async def test_an_explicit_provider_takes_planner_model_when_it_fits(
    provider: str, planner_model: str, model: str
) -> None:
    choice = await choose_provider(settings(planner_model=planner_model), provider=provider)
    assert choice.model == model


async def test_planner_provider_and_planner_model_come_next() -> None:
    choice = await choose_provider(
        settings(openai_api_key="k", planner_provider="Anthropic", planner_model="claude-opus-4-5")
    )
    assert (choice.provider, choice.model) == ("anthropic", "claude-opus-4-5")
    assert choice.describe() == "planner: anthropic claude-opus-4-5 (PLANNER_PROVIDER=Anthropic)"


@pytest.mark.parametrize(
    ("values", "provider", "reason"),
    [
        ({"openai_api_key": "k", "anthropic_api_key": "k"}, "openai", "OPENAI_API_KEY is set"),
        ({"anthropic_api_key": "k"}, "anthropic", "ANTHROPIC_API_KEY is set"),
        (
            {"azure_openai_endpoint": "https://x", "azure_openai_api_key": "k", "azure_openai_deployment": "d"},
            "azure_openai",
            "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY are set",
        ),
    ],
)
async def test_a_key_that_is_set_picks_its_provider(values: dict[str, str], provider: str, reason: str) -> None:
    choice = await choose_provider(settings(**values))
    assert (choice.provider, choice.reason) == (provider, reason)


async def test_with_no_key_a_reachable_ollama_is_used_with_its_best_planner_model() -> None:
    with FakeLLMServer(models=["phi3", "qwen2.5:14b"]) as server:
        choice = await choose_provider(settings(ollama_api_url=server.base_url))
    assert (choice.provider, choice.model) == ("ollama", "qwen2.5:14b")
    assert "local Ollama answered" in choice.reason


async def test_with_nothing_configured_the_library_is_chosen_and_the_reason_says_what_was_missing() -> None:
    choice = await choose_provider(settings())
    assert choice.provider == "library" and choice.model is None
    assert "OPENAI_API_KEY" in choice.reason and "no Ollama answered" in choice.reason


async def test_the_ollama_probe_is_bounded_by_its_timeout() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    assert await probe_ollama("http://ollama:11434", transport=httpx.MockTransport(hang)) is None


async def test_an_unknown_provider_is_a_configuration_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'anthropic'"):
        await choose_provider(settings(), provider="antropic")


def test_the_preferred_local_planner_is_picked_from_installed_models() -> None:
    assert pick_local_model(["phi3:latest", "llama3.1:8b"]) == "llama3.1:8b"
    assert pick_local_model(["mixtral"]) == "mixtral"
    assert pick_local_model([]) is None


def test_env_example_lists_every_setting_with_its_default() -> None:
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", text, re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}
    example = Settings.from_env({}, dotenv=Path(__file__).resolve().parents[2] / ".env.example")
    assert example == Settings.from_env({}, dotenv=None)  # the example sets only the defaults
