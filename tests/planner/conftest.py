"""Planner tests: small tools that count their calls, a fake model server, and an isolated plan library."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ToolError
from orchestrator.planner import LargePlanner, PlanLibrary
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings, use_settings
from orchestrator.testing.fake_llm import FakeLLMServer

KEY = "sk-test-key"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused at once


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDKs read keys and URLs from the environment; make sure nothing real leaks in."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
        "PLANNER_PROVIDER",
        "PLANNER_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Default settings with a private ORCHESTRATOR_HOME and no Ollama to find."""
    with use_settings(Settings(orchestrator_home=tmp_path / "home", ollama_api_url=CLOSED_PORT_URL)) as pinned:
        yield pinned


@pytest.fixture
def calls() -> Counter[str]:
    """How many times each test tool ran."""
    return Counter()


@pytest.fixture
def saved() -> list[tuple[str, float]]:
    """What the non-read-only `save` tool wrote."""
    return []


@pytest.fixture
def tools(calls: Counter[str], saved: list[tuple[str, float]]) -> ToolRegistry:
    """Arithmetic tools that count their calls; `divide` fails on zero (not retryable); `save` writes."""
    registry = ToolRegistry()

    @registry.tool(read_only=True, idempotent=True, open_world=False)
    def double(x: float) -> float:
        """Double a number."""
        calls["double"] += 1
        return x * 2

    @registry.tool(read_only=True, idempotent=True, open_world=False)
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        calls["add"] += 1
        return a + b

    @registry.tool(read_only=True, idempotent=True, open_world=False)
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        calls["divide"] += 1
        if b == 0:
            raise ToolError("division by zero")
        return a / b

    @registry.tool(kind="small_model", read_only=True)
    def classify(text: str, labels: list[str]) -> str:
        """Pick the label that fits the text best."""
        calls["classify"] += 1
        return next((label for label in labels if label in text), labels[0])

    @registry.tool(idempotent=False)  # not read-only: it writes, so it must never run from an unvalidated plan
    def save(value: float, name: str = "result") -> str:
        """Store a value under a name (writes: the test records each call)."""
        calls["save"] += 1
        saved.append((name, value))
        return name

    return registry


# A valid plan over the test tools: two independent steps, then one that needs both.
PLAN: dict[str, Any] = {
    "goal": "double n and add six",
    "inputs": {"n": {"type": "integer"}},
    "steps": [
        {"id": "twice", "tool": "double", "args": {"x": "input:n"}},
        {"id": "six", "tool": "double", "args": {"x": 3}},
        {"id": "total", "tool": "add", "args": {"a": "step:twice", "b": "step:six"}},
    ],
    "output": "step:total",
}
CONTEXT = {"n": 5}


def plan_text(plan: dict[str, Any] | None = None) -> str:
    return json.dumps(plan if plan is not None else PLAN, indent=2)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY, model_aliases={"prod-gpt4o": "gpt-4o-2024-08-06"}) as server:
        yield server


def provider_options(provider: str, server: FakeLLMServer) -> dict[str, Any]:
    """How to point each provider at the fake server, through the real SDK or client."""
    if provider == "openai":
        return {"model": "gpt-4o", "api_key": KEY, "base_url": server.openai_url}
    if provider == "anthropic":
        return {"model": "claude-sonnet-4-6", "api_key": KEY, "base_url": server.base_url}
    if provider == "ollama":
        return {"model": "llama3.1", "base_url": server.base_url, "backoff_s": 0.01}
    if provider == "azure_openai":
        return {"model": "prod-gpt4o", "api_key": KEY, "endpoint": server.base_url, "api_version": "2024-10-21"}
    if provider == "openai_compatible":
        return {"model": "qwen2.5-72b", "api_key": KEY, "base_url": server.openai_url}
    raise AssertionError(provider)


@pytest.fixture
async def planner_for(
    fake: FakeLLMServer, tools: ToolRegistry, settings: Settings
) -> AsyncIterator[Callable[..., LargePlanner]]:
    """Makes planners of a provider pointed at the fake server (no plan library unless asked), closed after."""
    made: list[LargePlanner] = []

    def factory(provider: str, *, server: FakeLLMServer | None = None, **options: Any) -> LargePlanner:
        opts = provider_options(provider, server or fake)
        model = opts.pop("model")
        options.setdefault("library", False)
        options.setdefault("timeout_s", 5.0)
        options.setdefault("max_retries", 2)
        options.setdefault("registry", tools)
        options.setdefault("settings", settings)
        planner = LargePlanner(provider, model, **opts, **options)
        made.append(planner)
        return planner

    yield factory
    for planner in made:
        await planner.aclose()


@pytest.fixture
def library(settings: Settings) -> PlanLibrary:
    """A plan library in the test's home, with no seeds and exact matching only."""
    return PlanLibrary(settings=settings, seeds=(), embedder=None)
