"""Where the shared receipt data lives (overridable with ORCHESTRATOR_SHARED_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_receipts() -> Path:
    """The shared receipt folder; the test is skipped, saying why, when it is not on this machine."""
    root = Path(
        os.environ.get("ORCHESTRATOR_SHARED_DATA") or Path(__file__).resolve().parents[2].parent / "shared/data"
    )
    folder = root / "receipts"
    if not (folder / "sroie").is_dir() or not (folder / "wildreceipt").is_dir():
        pytest.skip(f"shared receipt data not found at {folder} (set ORCHESTRATOR_SHARED_DATA to its parent folder)")
    return folder
