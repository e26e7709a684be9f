"""The one interface every model back-end implements, and the small pieces the adapters share.

A :class:`ChatModel` has one coroutine, :meth:`ChatModel.complete`: messages in, a :class:`Completion` out.
The planner (one call per request, large model) and the small-model workers (many calls, local model) both
talk to models only through it, so a test can swap any adapter for another pointed at a fake server.

Errors, mapped at one border per adapter:

```
ConfigurationError   missing or rejected key/endpoint (HTTP 401/403 included), missing SDK
ModelError           everything that failed at run time: .status_code, .body, .retryable
                     - HTTP 408/409/429/5xx, timeouts, refused connections, streams cut mid-way: retryable
                     - other HTTP 4xx (bad request, unknown model): not retryable
```
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.context import Usage
from orchestrator.errors import ModelError

Role = Literal["system", "user", "assistant"]
DeltaCallback = Callable[[str], None]

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRY_AFTER_S = 60.0
"""A server asking for a longer wait than this is not retried: the caller gets the 429 at once."""

_BODY_LIMIT = 2000


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str

    @classmethod
    def system(cls, content: str) -> Message:
        """A system message."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        """A user message."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        """An assistant message (a previous answer, e.g. in a re-ask loop)."""
        return cls(role="assistant", content=content)


class Completion(BaseModel):
    """What a model answered, with what it cost.

    `text` is the whole answer; for a structured call it is the JSON document (for Anthropic, the
    input of the forced tool call, serialised). `structured` says whether the provider was asked to
    enforce `json_schema` natively. `finish_reason` is the provider's own word (``stop``, ``length``,
    ``end_turn``, ``max_tokens``, ``tool_use``...); see :attr:`truncated`.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    usage: Usage
    model: str
    provider: str
    latency_s: float
    structured: bool = False
    finish_reason: str | None = None
    first_delta_s: float | None = Field(default=None, description="seconds until the first streamed delta")

    @property
    def truncated(self) -> bool:
        """Whether the model stopped because it ran out of output tokens."""
        return self.finish_reason in {"length", "max_tokens"}

    def json_value(self) -> Any:
        """The answer parsed as JSON (raises ValueError when it is not JSON)."""
        return json.loads(self.text)


@runtime_checkable
class ChatModel(Protocol):
    """A chat model back-end: the planner's and the small-model workers' only view of a model."""

    provider: str
    model: str

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        schema_name: str = "output",
        temperature: float = 0.0,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        """Answer `messages`.

        Args:
            messages: the conversation, system messages first.
            json_schema: when given, ask the provider to return a JSON document of this shape (natively:
                OpenAI `response_format`, Anthropic a forced tool, Ollama `format`).
            schema_name: the name of that schema (OpenAI schema name, Anthropic tool name).
            temperature: sampling temperature.
            max_tokens: cap on output tokens (provider default when None; Anthropic needs one, 8192).
            on_delta: when given, the call streams and this is called with each piece of text as it
                arrives (for Anthropic structured output, each piece of the tool input's JSON).
            timeout_s: per-attempt timeout (connect, and each read), overriding the model's default.

        Raises:
            ModelError: the call failed at run time (see `.retryable`).
            ConfigurationError: the key or endpoint is missing or was rejected.
        """
        ...


class OwnsClient:
    """`aclose()` and `async with` for adapters that may own their HTTP client (never one handed in)."""

    _owns_client: bool

    async def _close_client(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the client, unless it was handed in."""
        if self._owns_client:
            await self._close_client()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def is_retryable_status(status_code: int) -> bool:
    """The statuses worth another attempt: request timeout, lock conflict, rate limit, server errors."""
    return status_code in {408, 409, 429} or status_code >= 500


def body_text(body: object) -> str | None:
    """An error body as bounded text, for `ModelError.body`."""
    if body is None:
        return None
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= _BODY_LIMIT else text[:_BODY_LIMIT] + "..."


def backoff_delay(attempt: int, base_s: float, *, cap_s: float = 8.0) -> float:
    """Exponential backoff from `base_s`, capped, less a random 0-25% (jitter); `attempt` counts from 1."""
    delay = min(base_s * (2.0 ** (attempt - 1)), cap_s)
    return delay * (1 - 0.25 * random.random())


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number, or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


class StreamCollector:
    """Collects streamed text, forwards each piece to `on_delta`, and times the first one."""

    def __init__(self, on_delta: DeltaCallback | None, started: float) -> None:
        self._on_delta = on_delta
        self._started = started
        self._parts: list[str] = []
        self.first_delta_s: float | None = None

    def add(self, piece: str) -> None:
        """Record one piece of text (empty pieces are dropped)."""
        if not piece:
            return
        if self.first_delta_s is None:
            self.first_delta_s = time.perf_counter() - self._started
        self._parts.append(piece)
        if self._on_delta is not None:
            self._on_delta(piece)

    @property
    def text(self) -> str:
        """Everything collected so far."""
        return "".join(self._parts)


def stream_cut(provider: str, model: str, received: int) -> ModelError:
    """The error for a stream that ended before the provider said it was finished."""
    return ModelError(
        f"{provider} stream for {model!r} ended before the model finished ({received} characters received)",
        retryable=True,
    )
