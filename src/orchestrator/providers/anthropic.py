"""Anthropic's Messages API through the official SDK.

Structured output goes through tool use: the JSON Schema becomes the input schema of one tool, and
``tool_choice`` forces the model to call it, so the tool's input is the answer. When streaming, the
deltas are the ``input_json_delta`` pieces of that input (the planner parses the plan as it is written);
otherwise they are ``text_delta`` pieces. Usage comes from ``message_start`` and ``message_delta``.

Sampling: Claude models from 4.7 on reject ``temperature`` (HTTP 400), and the SDK (>= 1.0) has no
argument for it, so it goes in ``extra_body`` and only to models that take it (see :func:`accepts_temperature`).

Retries are the SDK's own (bounded by `max_retries`, honouring Retry-After). The SDK lets transport
errors raised mid-stream through unwrapped, so the border, :meth:`AnthropicChatModel._errors`, maps
both the SDK's exceptions and the HTTP client's.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx

from orchestrator.context import Usage
from orchestrator.errors import ConfigurationError, ModelError, ModelRefusal
from orchestrator.providers.base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    Completion,
    DeltaCallback,
    Message,
    OwnsClient,
    StreamCollector,
    body_text,
    is_retryable_status,
    stream_cut,
)
from orchestrator.providers.pricing import PriceOverrides, cost_from_table, find_price, resolve_prices

try:
    import anthropic
    from anthropic.types import MessageParam, ToolChoiceToolParam, ToolParam
except ImportError as _import_error:  # pragma: no cover - depends on the environment
    raise ImportError(
        'the anthropic provider needs the anthropic SDK: pip install "orchestrator[anthropic]"'
    ) from _import_error

# The HTTP client's own errors escape the SDK mid-stream: httpx2 for SDK >= 2, httpx before.
_TIMEOUT_ERRORS: tuple[type[Exception], ...] = (httpx.TimeoutException,)
_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)
try:
    import httpx2
except ImportError:  # pragma: no cover - older SDKs
    pass
else:
    _TIMEOUT_ERRORS += (httpx2.TimeoutException,)
    _TRANSPORT_ERRORS += (httpx2.TransportError,)

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 8192
ANTHROPIC_URL = "https://api.anthropic.com"
_RETRYABLE_STREAM_ERRORS = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


@dataclass
class _Answer:
    text: str = ""
    finish: str | None = None
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    first_delta_s: float | None = None


class AnthropicChatModel(OwnsClient):
    """A :class:`~orchestrator.providers.base.ChatModel` over Anthropic's Messages API.

    Args:
        model: the model id, e.g. ``claude-sonnet-5-5`` or ``claude-haiku-4-5``.
        client: a ready SDK client; when given, the model does not close it.
        api_key: the key; required unless `client` is given.
        base_url: the API root (without ``/v1``).
        timeout_s: default per-attempt timeout.
        max_retries: retries after the first attempt (429, 5xx, 529, timeouts, connection errors).
        prices: price overrides (a mapping or a JSON file path).
        default_max_tokens: the output cap sent when a call gives none (the API requires one).
        send_temperature: whether to send `temperature`; None decides by model id (:func:`accepts_temperature`).
    """

    def __init__(
        self,
        model: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        prices: PriceOverrides | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        send_temperature: bool | None = None,
    ) -> None:
        self.provider = "anthropic"
        self.model = model
        self.timeout_s = timeout_s
        self.default_max_tokens = default_max_tokens
        self.send_temperature = accepts_temperature(model) if send_temperature is None else send_temperature
        self._prices = resolve_prices(prices)
        self._owns_client = client is None
        if client is None:
            if api_key is None:
                raise ConfigurationError("anthropic needs an API key: set ANTHROPIC_API_KEY or pass api_key=")
            client = anthropic.AsyncAnthropic(
                api_key=api_key,
                base_url=base_url or ANTHROPIC_URL,  # explicit, so the SDK does not read ANTHROPIC_BASE_URL
                timeout=timeout_s,
                max_retries=max_retries,
            )
        self._client = client

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
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        params: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(messages),
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
            "timeout": timeout_s if timeout_s is not None else self.timeout_s,
        }
        if self.send_temperature:
            params["extra_body"] = {"temperature": temperature}
        if system:
            params["system"] = system
        if json_schema is not None:
            tool: ToolParam = {
                "name": schema_name,
                "description": f"Return the answer as the input of this tool (the {schema_name} JSON document).",
                "input_schema": cast(Any, json_schema),
            }
            choice: ToolChoiceToolParam = {"type": "tool", "name": schema_name}
            params["tools"] = [tool]
            params["tool_choice"] = choice
        with self._errors():
            if on_delta is None:
                answer = await self._create(params, schema_name if json_schema is not None else None)
            else:
                answer = await self._stream(params, json_schema is not None, StreamCollector(on_delta, started))
        if answer.finish == "refusal":
            raise ModelRefusal(f"anthropic model {self.model!r} refused to answer", said=answer.text[:200])
        completion = Completion(
            text=answer.text,
            usage=self._usage(answer),
            model=answer.model or self.model,
            provider=self.provider,
            latency_s=time.perf_counter() - started,
            structured=json_schema is not None,
            finish_reason=answer.finish,
            first_delta_s=answer.first_delta_s,
        )
        logger.debug(
            "anthropic %s: %d in, %d out tokens, %.2fs",
            completion.model,
            answer.input_tokens,
            answer.output_tokens,
            completion.latency_s,
        )
        return completion

    async def _create(self, params: dict[str, Any], tool_name: str | None) -> _Answer:
        message = await self._client.messages.create(**params)
        texts: list[str] = []
        tool_input: str | None = None
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use" and block.name == tool_name:
                tool_input = json.dumps(block.input)
        return _Answer(
            text=tool_input if tool_input is not None else "".join(texts),
            finish=message.stop_reason,
            model=message.model,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
        )

    async def _stream(self, params: dict[str, Any], structured: bool, collector: StreamCollector) -> _Answer:
        stream = await self._client.messages.create(**params, stream=True)
        answer = _Answer()
        finished = False
        tool_started = False
        async with stream:
            async for event in stream:
                if event.type == "message_start":
                    answer.model = event.message.model
                    answer.input_tokens = event.message.usage.input_tokens
                    answer.output_tokens = event.message.usage.output_tokens
                elif event.type == "content_block_start":
                    tool_started = tool_started or event.content_block.type == "tool_use"
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "input_json_delta" and structured:
                        collector.add(delta.partial_json)
                    elif delta.type == "text_delta" and not structured:
                        collector.add(delta.text)
                elif event.type == "message_delta":
                    answer.finish = event.delta.stop_reason
                    answer.output_tokens = event.usage.output_tokens
                    if event.usage.input_tokens is not None:
                        answer.input_tokens = event.usage.input_tokens
                elif event.type == "message_stop":
                    finished = True
        if not finished:
            raise stream_cut(self.provider, self.model, len(collector.text))
        answer.text = collector.text or ("{}" if structured and tool_started else "")
        answer.first_delta_s = collector.first_delta_s
        return answer

    def _usage(self, answer: _Answer) -> Usage:
        reported = answer.model
        priced = reported if reported and find_price(reported, self._prices) is not None else self.model
        return Usage(
            calls=1,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=cost_from_table(priced, answer.input_tokens, answer.output_tokens, self._prices),
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The border: SDK and transport exceptions become ModelError (or ConfigurationError for a bad key)."""
        try:
            yield
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            if status in {401, 403}:
                raise ConfigurationError(
                    f"anthropic rejected the API key (HTTP {status}): {exc.api_message or exc.message}; "
                    "check ANTHROPIC_API_KEY or the api_key= argument"
                ) from exc
            if status < 400:  # an `error` event inside a 200 stream
                kind = exc.type or "error"
                raise ModelError(
                    f"anthropic failed mid-stream ({self.model!r}): {kind}: {exc.api_message or exc.message}",
                    body=body_text(exc.body),
                    retryable=kind in _RETRYABLE_STREAM_ERRORS,
                ) from exc
            raise ModelError(
                f"anthropic returned HTTP {status} for {self.model!r}: {exc.api_message or exc.message}",
                status_code=status,
                body=body_text(exc.body),
                retryable=is_retryable_status(status),
            ) from exc
        except anthropic.APITimeoutError as exc:
            raise ModelError(f"anthropic timed out ({self.model!r})", retryable=True) from exc
        except anthropic.APIConnectionError as exc:
            raise ModelError(
                f"anthropic connection failed at {self._client.base_url} ({self.model!r}): {_cause(exc)}",
                retryable=True,
            ) from exc
        except _TIMEOUT_ERRORS as exc:
            raise ModelError(f"anthropic timed out mid-stream ({self.model!r})", retryable=True) from exc
        except _TRANSPORT_ERRORS as exc:
            raise ModelError(
                f"anthropic stream broke ({self.model!r}): {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        except anthropic.AnthropicError as exc:
            raise ModelError(f"anthropic client error ({self.model!r}): {exc}") from exc

    async def _close_client(self) -> None:
        await self._client.close()

    def __repr__(self) -> str:
        return f"AnthropicChatModel(model={self.model!r})"


def accepts_temperature(model: str) -> bool:
    """Whether a Claude model id takes ``temperature``: versions before 4.7 do; 4.7, 5 and later reject it.

    The version is the first one or two small numbers in the id (dates are skipped):
    ``claude-3-5-sonnet-20241022`` is 3.5, ``claude-sonnet-4-5`` 4.5, ``claude-sonnet-5`` 5.0. An id
    with no version is treated as new.
    """
    numbers = [int(n) for n in re.findall(r"(?<!\d)\d{1,2}(?!\d)", model.rsplit("/", 1)[-1])]
    if not numbers:
        return False
    version = (numbers[0], numbers[1] if len(numbers) > 1 else 0)
    return version < (4, 7)


def _messages(messages: Sequence[Message]) -> list[MessageParam]:
    out: list[MessageParam] = []
    for message in messages:
        if message.role == "user":
            out.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            out.append({"role": "assistant", "content": message.content})
    return out


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)


__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicChatModel", "accepts_temperature"]
