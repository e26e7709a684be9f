"""The transformers back-end as a :class:`~orchestrator.small_model_worker.backends.base.JsonBackend`.

A thin adapter over :class:`~orchestrator.small_model_worker.backends.transformers.TransformersBackend`,
whose decoding is constrained to the schema (lm-format-enforcer), so even a weak local model can only
write JSON of the right shape. It runs on our hardware: calls cost nothing and the budget never stops them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.providers.base import Message
from orchestrator.small_model_worker.backends.base import Generated
from orchestrator.small_model_worker.backends.transformers import TransformersBackend

__all__ = ["TransformersJsonBackend"]


class TransformersJsonBackend:
    """A local Hugging Face model, loaded lazily, generating schema-constrained JSON.

    Args:
        model_name_or_path: a local model folder, or a Hugging Face id already in the local cache.
        device: torch device (None: cuda when available, else cpu).
        max_new_tokens: cap on generated tokens per call.
        backend: an already made TransformersBackend (the other arguments are then ignored).
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        device: str | None = None,
        max_new_tokens: int = 1024,
        backend: TransformersBackend | None = None,
    ) -> None:
        self.backend = backend or TransformersBackend(model_name_or_path, device=device, max_new_tokens=max_new_tokens)
        self._name = f"transformers:{Path(model_name_or_path).name or model_name_or_path}"

    @property
    def name(self) -> str:
        """``transformers:<model folder or id>``."""
        return self._name

    @property
    def local(self) -> bool:
        """Always: the model runs in this process."""
        return True

    async def generate_json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        *,
        schema_name: str = "answer",
        max_tokens: int | None = None,
    ) -> Generated:
        """Greedy, constrained generation in a worker thread.

        `max_tokens` is ignored: the back-end's own ``max_new_tokens`` applies, because characters per token
        vary too much between tokenizers for the caller's estimate to fit every model.
        """
        prompt = [{"role": m.role, "content": m.content} for m in messages]
        result = await self.backend.generate_json(prompt, schema)
        return Generated(result.text, result.usage)

    async def prepare(self) -> None:
        """Load the model (once), so that loading is not counted against a call's deadline."""
        await self.backend.load()

    async def aclose(self) -> None:
        """Nothing to close (the model stays loaded for the process)."""

    def __repr__(self) -> str:
        return f"TransformersJsonBackend({self._name!r})"
