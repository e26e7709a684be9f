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
def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Every test sees default settings (no USE_SMALL_MODEL, no keys from the developer's shell or .env)."""
    home = tmp_path_factory.mktemp("orchestrator_home")
    with use_settings(Settings(orchestrator_home=home)) as settings:
        yield settings
