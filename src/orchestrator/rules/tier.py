"""What a cascade tier is: a :class:`Prediction` per name, from anything with ``name`` and ``classify``.

The keyword tiers live in this layer (:class:`~orchestrator.rules.categories.KeywordTier`); the model tiers
and the cascade that orders them live above it, in :mod:`orchestrator.small_model_worker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Prediction", "Tier"]


@dataclass(frozen=True)
class Prediction:
    """One label for one text, how sure the tier is (0 to 1), and which tier said so."""

    label: str
    confidence: float
    tier: str | None = None


@runtime_checkable
class Tier(Protocol):
    """One classifier in the cascade."""

    @property
    def name(self) -> str:
        """Short name, recorded as the answering mode (``keyword``, ``embedded``, ``ollama:phi3``, ...)."""
        ...

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> Sequence[Prediction | None]:
        """One prediction per name, each label one of `labels`; None where the tier cannot answer."""
        ...
