"""The one interface a generative small-model back-end implements: messages and a JSON Schema in, JSON text out.

    class JsonBackend(Protocol):
        name: str     # the mode recorded for its answers, e.g. "ollama:phi3"
        local: bool   # runs on our own hardware: no per-call cost, so a spent budget does not stop it
        async def generate_json(messages, schema, *, schema_name, max_tokens) -> Generated
        async def aclose() -> None

The adapters are thin: :class:`~orchestrator.small_model_worker.backends.chat.ChatBackend` over any
:class:`~orchestrator.providers.base.ChatModel` (Ollama, OpenAI-compatible, Azure AI, and the large model
for the last cascade tier), and
:class:`~orchestrator.small_model_worker.backends.local.TransformersJsonBackend` over the constrained-decoding
:class:`~orchestrator.small_model_worker.backends.transformers.TransformersBackend`. Anything else that
implements the protocol (a test double, a new server) plugs into
:class:`~orchestrator.small_model_worker.SmallModelWorker` through ``generator=``.

A back-end may also have ``async prepare()`` (the transformers one loads its model there): the runner calls
it before each call's deadline starts, so a slow first load is not mistaken for a slow answer.

The embedded MiniLM back-end is not generative: it is a classifier, the cascade's
:class:`~orchestrator.small_model_worker.cascade.Tier`.

Errors: a back-end raises :class:`~orchestrator.errors.ModelError` for a failed call and
:class:`~orchestrator.errors.ConfigurationError` for a set-up problem; the worker falls back to keywords on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from orchestrator.context import Usage
from orchestrator.providers.base import Message

__all__ = ["Generated", "JsonBackend"]


@dataclass(frozen=True)
class Generated:
    """What one call produced: the JSON text, its usage (tokens, cost), and whether the output cap cut it."""

    text: str
    usage: Usage
    truncated: bool = False


@runtime_checkable
class JsonBackend(Protocol):
    """A generative back-end asked for JSON that follows a schema."""

    @property
    def name(self) -> str:
        """The mode its answers are recorded as: ``<backend>:<model>``."""
        ...

    @property
    def local(self) -> bool:
        """Whether it runs on our own hardware (no per-call cost; the budget does not stop it)."""
        ...

    async def generate_json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        *,
        schema_name: str = "answer",
        max_tokens: int | None = None,
    ) -> Generated:
        """Answer `messages` with JSON for `schema` (enforced by the back-end where it can)."""
        ...

    async def aclose(self) -> None:
        """Release connections (a no-op for back-ends without any)."""
        ...
