"""Chat-model back-ends: Ollama, OpenAI-compatible servers and Azure AI, through the provider layer.

:class:`ChatBackend` adapts any :class:`~orchestrator.providers.base.ChatModel` to the
:class:`~orchestrator.small_model_worker.backends.base.JsonBackend` protocol, asking for the schema natively
(Ollama ``format``, ``response_format`` json_schema for the OpenAI-compatible and Azure AI APIs). The
provider adapters already map errors, bound retries and time out each attempt; :func:`chat_backend`
builds one from a back-end name and the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.errors import ConfigurationError
from orchestrator.providers.base import ChatModel, Message
from orchestrator.providers.factory import make_chat_model
from orchestrator.settings import Settings
from orchestrator.small_model_worker.backends.base import Generated

__all__ = ["CHAT_BACKENDS", "ChatBackend", "chat_backend"]

CHAT_BACKENDS: dict[str, str] = {"ollama": "ollama", "openai_compatible": "openai_compatible", "azure": "azure_ai"}
"""Small-model back-end name -> provider name."""

_LOCAL = frozenset({"ollama"})


class ChatBackend:
    """A chat model asked for schema-constrained JSON.

    Args:
        model: the chat model (owned: closed by :meth:`aclose`).
        name: the mode recorded for its answers (default ``<provider>:<model>``).
        local: whether it runs on our own hardware (default: Ollama yes, servers elsewhere no).
        timeout_s: per-attempt timeout handed to the model.
    """

    def __init__(
        self, model: ChatModel, *, name: str | None = None, local: bool | None = None, timeout_s: float = 30.0
    ) -> None:
        self.model = model
        self._name = name or f"{model.provider}:{model.model}"
        self._local = model.provider in _LOCAL if local is None else local
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        """``<backend>:<model>``, e.g. ``ollama:phi3``."""
        return self._name

    @property
    def local(self) -> bool:
        """Whether calls are free (a local server)."""
        return self._local

    async def generate_json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        *,
        schema_name: str = "answer",
        max_tokens: int | None = None,
    ) -> Generated:
        """One call with the schema enforced by the server."""
        completion = await self.model.complete(
            messages, json_schema=schema, schema_name=schema_name, max_tokens=max_tokens, timeout_s=self.timeout_s
        )
        return Generated(completion.text, completion.usage, truncated=completion.truncated)

    async def aclose(self) -> None:
        """Close the model's HTTP client."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()

    def __repr__(self) -> str:
        return f"ChatBackend({self._name!r})"


def chat_backend(
    backend: str,
    model_name: str,
    settings: Settings,
    *,
    timeout_s: float,
    max_retries: int,
    base_url: str | None = None,
    api_key: str | None = None,
    endpoint: str | None = None,
) -> ChatBackend:
    """The chat back-end `backend` (``ollama``, ``openai_compatible``, ``azure``) for `model_name`.

    Raises:
        ConfigurationError: an unknown back-end, or a missing URL, endpoint or key (naming the variable).
    """
    provider = CHAT_BACKENDS.get(backend)
    if provider is None:
        raise ConfigurationError(f"{backend!r} is not a chat back-end; chat back-ends are {', '.join(CHAT_BACKENDS)}")
    options: dict[str, Any] = {"timeout_s": timeout_s, "max_retries": max_retries}
    if provider == "ollama":
        options["base_url"] = base_url or settings.ollama_api_url
        options["backoff_s"] = 0.25
    elif provider == "openai_compatible":
        options |= {"base_url": base_url, "api_key": api_key}
    else:
        options |= {"endpoint": endpoint or base_url, "api_key": api_key}
    model = make_chat_model(provider, model_name, settings=settings, **options)
    return ChatBackend(model, name=f"{backend}:{model_name}", timeout_s=timeout_s)
