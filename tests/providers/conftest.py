"""Every provider test talks to a FakeLLMServer on 127.0.0.1 through the real SDK or client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest

from orchestrator.providers import ChatModel, make_chat_model
from orchestrator.settings import Settings
from orchestrator.testing.fake_llm import FakeLLMServer

# Each provider, and the model id its cost is computed from (Azure reports the model behind the deployment).
PRICED_AS = {
    "openai": "gpt-4o",
    "azure_openai": "gpt-4o-2024-08-06",
    "anthropic": "claude-sonnet-4-6",
    "ollama": "ollama/llama3.1",
    "openai_compatible": "phi3",
}
KEY = "sk-test-key"


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDKs read keys and URLs from the environment when not given them; make sure nothing real leaks in."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_AD_TOKEN",
        "OPENAI_API_VERSION",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY, model_aliases={"prod-gpt4o": "gpt-4o-2024-08-06"}) as server:
        yield server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every `anyio.sleep` the clients make between attempts (the SDKs and our Ollama loop all use it)."""
    recorded: list[float] = []
    real_sleep = anyio.sleep

    async def sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr(anyio, "sleep", sleep)
    return recorded


@pytest.fixture
def priced_as() -> dict[str, str]:
    """The model id each provider's cost is computed from."""
    return dict(PRICED_AS)


@pytest.fixture(params=list(PRICED_AS))
def provider(request: pytest.FixtureRequest) -> str:
    """Runs a test once per provider."""
    return str(request.param)


@pytest.fixture
async def model_for(fake: FakeLLMServer) -> AsyncIterator[Callable[..., Any]]:
    """Makes models pointed at the fake (or another server) and closes them after the test."""
    made: list[Any] = []

    def factory(provider: str, server: FakeLLMServer | None = None, **options: Any) -> Any:
        model = build(provider, server or fake, **options)
        made.append(model)
        return model

    yield factory
    for model in made:
        await model.aclose()


def build(provider: str, server: FakeLLMServer, **options: Any) -> ChatModel:
    """A model of `provider` pointed at the fake, made through the factory the way the app makes it."""
    settings = Settings()
    options.setdefault("timeout_s", 5.0)
    options.setdefault("max_retries", 2)
    if provider == "openai":
        options.setdefault("api_key", KEY)
        return make_chat_model("openai", "gpt-4o", settings=settings, base_url=server.openai_url, **options)
    if provider == "azure_openai":
        options.setdefault("api_key", KEY)
        return make_chat_model(
            "azure_openai",
            "prod-gpt4o",
            settings=settings,
            endpoint=server.base_url,
            api_version="2024-10-21",
            **options,
        )
    if provider == "anthropic":
        options.setdefault("api_key", KEY)
        return make_chat_model("anthropic", "claude-sonnet-4-6", settings=settings, base_url=server.base_url, **options)
    if provider == "ollama":
        options.setdefault("backoff_s", 0.01)
        return make_chat_model("ollama", "llama3.1", settings=settings, base_url=server.base_url, **options)
    if provider == "openai_compatible":
        options.setdefault("api_key", KEY)
        return make_chat_model("openai_compatible", "phi3", settings=settings, base_url=server.openai_url, **options)
    raise AssertionError(provider)
