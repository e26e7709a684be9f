from __future__ import annotations

import pytest
from pydantic import BaseModel

from orchestrator.registry import ToolRegistry


class Item(BaseModel):
    name: str
    price: float


class Parsed(BaseModel):
    merchant: str
    items: list[Item]
    total: float


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool
    def ocr(image_path: str) -> dict[str, str]:
        """Read text."""
        return {"text": image_path}

    @reg.tool
    def parse(text: str) -> Parsed:
        """Parse a receipt."""
        return Parsed(merchant="m", items=[], total=0)

    @reg.tool
    def label(text: str, labels: list[str] | None = None) -> str:
        """Label a text."""
        return "x"

    @reg.tool
    def add(a: float, b: float = 0) -> float:
        """Add."""
        return a + b

    return reg
