"""Ollama's own REST API (``POST /api/chat``) over httpx, for local small models and local planners.

The HTTP client is a seam: pass `client=` (an ``httpx.AsyncClient`` you own) or `transport=` (e.g.
``httpx.MockTransport``) and no socket is opened. Structured output sends the JSON Schema as ``format``
(Ollama >= 0.5 constrains decoding to it). Streaming reads NDJSON lines and the last one (``done``) carries
the token counts (``prompt_eval_count``, ``eval_count``).

There is no SDK here, so retries are ours: at most `max_retries` more attempts after a retryable failure
(429, 5xx, timeouts, refused connections), waiting Retry-After when the server sends one, else exponential
backoff with jitter. A stream is never retried once a delta has been handed to `on_delta`; the caller gets
a retryable ModelError instead, and never a silent partial answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import httpx

from orchestrator.context import Usage
from orchestrator.errors import ModelError
from orchestrator.providers.base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    MAX_RETRY_AFTER_S,
    Completion,
    DeltaCallback,
    Message,
    OwnsClient,
    StreamCollector,
    backoff_delay,
    body_text,
    is_retryable_status,
    parse_retry_after,
    stream_cut,
)
from orchestrator.providers.pricing import PriceOverrides, cost_from_table, resolve_prices

logger = logging.getLogger(__name__)

DEFAULT_OLLAMA_URL = "http://localhost:11434"


class _StatusError(ModelError):
    """An HTTP error status, remembering how long the server asked us to wait."""

    def __init__(self, message: str, *, status_code: int, body: str | None, retry_after: float | None) -> None:
        super().__init__(message, status_code=status_code, body=body, retryable=is_retryable_status(status_code))
        self.retry_after = retry_after


class OllamaChatModel(OwnsClient):
    """A :class:`~orchestrator.providers.base.ChatModel` over an Ollama server.

    Args:
        model: the model tag, e.g. ``phi3`` or ``llama3.1:8b``.
        base_url: the server root (``OLLAMA_API_URL``), without ``/api``.
        client: an ``httpx.AsyncClient`` to send through; when given, the model does not close it.
        transport: an httpx transport for the client the model makes (ignored with `client`).
        timeout_s: default per-attempt timeout; the first call after a model load can be slow.
        max_retries: retries after the first attempt.
        backoff_s: the first backoff delay; it doubles per attempt (capped at 8 s), with jitter.
        max_retry_after_s: a 429/503 asking for a longer wait than this is raised at once.
        options: Ollama ``options`` sent with every call (e.g. ``{"num_ctx": 8192}``); per-call
            temperature and max_tokens are laid over them.
        prices: price overrides; local models are priced as ``ollama/<model>``, free by default.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_OLLAMA_URL,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = 0.5,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
        options: Mapping[str, Any] | None = None,
        prices: PriceOverrides | None = None,
    ) -> None:
        self.provider = "ollama"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.options = dict(options or {})
        self._prices = resolve_prices(prices)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(transport=transport)

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
        """Answer `messages`; see :meth:`orchestrator.providers.base.ChatModel.complete`."""
        started = time.perf_counter()
        options = self.options | {"temperature": temperature}
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": on_delta is not None,
            "options": options,
        }
        if json_schema is not None:
            body["format"] = json_schema
        timeout = httpx.Timeout(timeout_s if timeout_s is not None else self.timeout_s)
        collector = StreamCollector(on_delta, started)
        final = await self._with_retries(body, timeout, collector)
        input_tokens = int(final.get("prompt_eval_count") or 0)
        output_tokens = int(final.get("eval_count") or 0)
        completion = Completion(
            text=collector.text if on_delta is not None else str(final.get("message", {}).get("content", "")),
            usage=Usage(
                calls=1,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_from_table(f"ollama/{self.model}", input_tokens, output_tokens, self._prices),
            ),
            model=str(final.get("model") or self.model),
            provider=self.provider,
            latency_s=time.perf_counter() - started,
            structured=json_schema is not None,
            finish_reason=final.get("done_reason"),
            first_delta_s=collector.first_delta_s,
        )
        logger.debug(
            "ollama %s: %d in, %d out tokens, %.2fs", self.model, input_tokens, output_tokens, completion.latency_s
        )
        return completion

    async def _with_retries(
        self, body: dict[str, Any], timeout: httpx.Timeout, collector: StreamCollector
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._errors():
                    return await self._once(body, timeout, collector)
            except ModelError as exc:
                retry_after = exc.retry_after if isinstance(exc, _StatusError) else None
                if (
                    not exc.retryable
                    or attempt > self.max_retries
                    or collector.text  # deltas already reached the caller: a retry would repeat them
                    or (retry_after is not None and retry_after > self.max_retry_after_s)
                ):
                    raise
                delay = retry_after if retry_after is not None else backoff_delay(attempt, self.backoff_s)
                logger.info("ollama %s: %s; retry %d of %d in %.2fs", self.model, exc, attempt, self.max_retries, delay)
                await anyio.sleep(delay)

    async def _once(self, body: dict[str, Any], timeout: httpx.Timeout, collector: StreamCollector) -> dict[str, Any]:
        async with self._client.stream("POST", f"{self.base_url}/api/chat", json=body, timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise self._status_error(response)
            if not body["stream"]:
                await response.aread()
                data = _json_object(response.text)
                if "error" in data:
                    raise ModelError(f"ollama failed ({self.model!r}): {data['error']}", retryable=True)
                return data
            final: dict[str, Any] | None = None
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                data = _json_object(line)
                if "error" in data:
                    raise ModelError(f"ollama failed mid-stream ({self.model!r}): {data['error']}", retryable=True)
                collector.add(str(data.get("message", {}).get("content", "")))
                if data.get("done"):
                    final = data
            if final is None:
                raise stream_cut(self.provider, self.model, len(collector.text))
            return final

    def _status_error(self, response: httpx.Response) -> _StatusError:
        status = response.status_code
        try:
            detail = str(response.json().get("error", response.text))
        except (ValueError, AttributeError):
            detail = response.text
        if status == 404 and "not found" in detail:
            detail += f" (run `ollama pull {self.model}` on the server)"
        return _StatusError(
            f"ollama returned HTTP {status} for {self.model!r}: {detail}",
            status_code=status,
            body=body_text(response.text),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The border: httpx exceptions become ModelError."""
        try:
            yield
        except httpx.ConnectError as exc:
            raise ModelError(
                f"cannot reach Ollama at {self.base_url} ({exc}); start it with `ollama serve`, "
                "or point OLLAMA_API_URL (or base_url=) at a running server",
                retryable=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise ModelError(f"ollama timed out ({self.model!r} at {self.base_url})", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ModelError(
                f"ollama connection broke ({self.model!r}): {type(exc).__name__}: {exc}", retryable=True
            ) from exc

    async def _close_client(self) -> None:
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"OllamaChatModel(model={self.model!r}, base_url={self.base_url!r})"


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"ollama sent something that is not JSON: {text[:200]!r}", body=body_text(text)) from exc
    if not isinstance(data, dict):
        raise ModelError(f"ollama sent a JSON {type(data).__name__}, expected an object", body=body_text(text))
    return data


__all__ = ["DEFAULT_OLLAMA_URL", "OllamaChatModel"]
