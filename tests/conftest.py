"""Shared fixtures: isolation from the developer's environment, and an asyncio backend for anyio tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.settings import Settings, use_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Every test sees default settings (no USE_SMALL_MODEL, no keys from the developer's shell or .env), and
    a private ORCHESTRATOR_HOME (the run store, caches), in this process and in the commands it starts."""
    home = tmp_path_factory.mktemp("orchestrator_home")
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(home))
    monkeypatch.delenv("ORCHESTRATOR_STORE", raising=False)
    with use_settings(Settings(orchestrator_home=home)) as settings:
        yield settings
