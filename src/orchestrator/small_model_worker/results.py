"""What the small-model worker returns: typed results, each with a confidence and the mode that answered.

`mode` names who answered: ``keyword`` (the rules), ``embedded`` (MiniLM), a model as
``<backend>:<model>`` (``ollama:phi3``, ``transformers:phi-3-mini``, ``azure:Phi-4``...), or a large model
as ``<provider>:<model>``. Receipts and categories reuse the receipt tools' models
(:class:`~orchestrator.rules.models.ParsedReceipt`,
:class:`~orchestrator.rules.models.CategorizedItems`), so a plan sees the same shapes whichever
mode answered.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["Classification", "Extraction", "SentimentResult", "Summary"]


class Classification(BaseModel):
    """One text's label."""

    text: str
    label: str
    confidence: float = Field(ge=0, le=1)
    mode: str = Field(description="who answered: keyword, embedded, or a model as <backend>:<model>")


class SentimentResult(BaseModel):
    """One text's sentiment: positive, negative or neutral."""

    text: str
    label: str = Field(description="positive, negative or neutral")
    confidence: float = Field(ge=0, le=1)
    mode: str


class Extraction(BaseModel):
    """Fields extracted from a text, shaped by the schema asked for (keyword mode: what the rules found)."""

    data: dict[str, Any] = Field(default_factory=dict)
    entities: list[str] = Field(default_factory=list, description="keyword mode: the aspects, amounts, e-mails found")
    confidence: float = Field(default=0.0, ge=0, le=1)
    mode: str = "keyword"


class Summary(BaseModel):
    """A short summary of a text."""

    summary: str
    confidence: float = Field(default=0.0, ge=0, le=1)
    mode: str = "keyword"
