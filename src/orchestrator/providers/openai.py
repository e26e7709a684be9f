"""OpenAI chat completions through the official SDK: OpenAI, Azure OpenAI, and any OpenAI-compatible server.

One class serves four providers, because they speak the same API:

- ``openai``: api.openai.com (or `base_url`).
- ``openai_compatible``: vLLM, llama.cpp's server, LM Studio, ... at `base_url`; the key is often unused.
- ``azure_openai``: :meth:`OpenAIChatModel.azure`, a deployment on an Azure endpoint (``api-key`` header,
  ``api-version`` query).
- ``azure_ai``: :meth:`OpenAIChatModel.azure_ai`, the Azure AI model inference API (``{endpoint}/chat/completions``,
  ``api-key`` header, ``api-version`` query) for the small models hosted there.

Structured output is native (``response_format`` of type ``json_schema``, not strict, so any JSON Schema
the planner produces is accepted). Streaming asks for a final usage chunk. Retries are the SDK's own
(bounded by `max_retries`, honouring Retry-After); everything the SDK raises is mapped to our errors in
:meth:`OpenAIChatModel._errors`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

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
    import openai
    from openai.types.chat import ChatCompletionMessageParam
    from openai.types.chat.completion_create_params import ResponseFormat
except ImportError as _import_error:  # pragma: no cover - depends on the environment
    raise ImportError('the openai provider needs the openai SDK: pip install "orchestrator[openai]"') from _import_error

logger = logging.getLogger(__name__)

DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_AZURE_AI_API_VERSION = "2024-08-01-preview"
"""Azure AI model inference: the first API version that accepts ``response_format`` of type json_schema."""
OPENAI_URL = "https://api.openai.com/v1"
_NO_KEY = "not-needed"
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAIChatModel(OwnsClient):
    """A :class:`~orchestrator.providers.base.ChatModel` over the OpenAI chat completions API.

    Args:
        model: the model id (for Azure, the deployment name).
        client: a ready SDK client; when given, the model does not close it.
        api_key: the key; required for ``openai`` unless `client` is given.
        base_url: the API root including ``/v1`` (e.g. ``http://localhost:8000/v1`` for vLLM).
        provider: ``openai`` or ``openai_compatible`` (Azure: use :meth:`azure`).
        timeout_s: default per-attempt timeout.
        max_retries: retries after the first attempt (429, 5xx, timeouts, connection errors).
        prices: price overrides (a mapping or a JSON file path), see :mod:`orchestrator.providers.pricing`.
        stream_usage: ask for the final usage chunk when streaming (turn off for servers that reject
            ``stream_options``).
        key_env: the environment variable to name when the key is missing or rejected.
        send_temperature: whether to send `temperature`; None sends it except to OpenAI's reasoning models
            (``o1``, ``o3``, ``o4``, ``gpt-5`` families), which reject anything but the default.
    """

    def __init__(
        self,
        model: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        provider: str = "openai",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        prices: PriceOverrides | None = None,
        stream_usage: bool = True,
        key_env: str = "OPENAI_API_KEY",
        send_temperature: bool | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.timeout_s = timeout_s
        self._key_env = key_env
        self._prices = resolve_prices(prices)
        self._stream_usage = stream_usage
        if send_temperature is None:
            send_temperature = provider == "openai_compatible" or not model.startswith(_REASONING_PREFIXES)
        self.send_temperature = send_temperature
        # OpenAI itself wants max_completion_tokens; most compatible servers only know max_tokens.
        self._max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = (
            "max_tokens" if provider in {"openai_compatible", "azure_ai"} else "max_completion_tokens"
        )
        self._owns_client = client is None
        if client is None:
            if api_key is None:
                if provider != "openai_compatible":
                    raise ConfigurationError(f"{provider} needs an API key: set {key_env} or pass api_key=")
                api_key = _NO_KEY
            if base_url is None:
                if provider == "openai_compatible":
                    raise ConfigurationError(f"{provider} needs the server's URL: pass base_url=")
                base_url = OPENAI_URL  # explicit, so the SDK does not read OPENAI_BASE_URL behind our back
            client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)
        self._client = client

    @classmethod
    def azure(
        cls,
        deployment: str,
        *,
        endpoint: str,
        api_key: str,
        api_version: str = DEFAULT_AZURE_API_VERSION,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        prices: PriceOverrides | None = None,
    ) -> OpenAIChatModel:
        """A deployment on Azure OpenAI (``{endpoint}/openai/deployments/{deployment}/chat/completions``)."""
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=endpoint,
            azure_deployment=deployment,
            api_key=api_key,
            api_version=api_version,
            timeout=timeout_s,
            max_retries=max_retries,
        )
        model = cls(
            deployment,
            client=client,
            provider="azure_openai",
            timeout_s=timeout_s,
            prices=prices,
            key_env="AZURE_OPENAI_API_KEY",
        )
        model._owns_client = True
        return model

    @classmethod
    def azure_ai(
        cls,
        model: str,
        *,
        endpoint: str,
        api_key: str,
        api_version: str = DEFAULT_AZURE_AI_API_VERSION,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        prices: PriceOverrides | None = None,
    ) -> OpenAIChatModel:
        """A model behind the Azure AI model inference API (Phi-3, Llama, Mistral... deployed in Azure AI Foundry).

        The REST shape is OpenAI's: ``POST {endpoint}/chat/completions?api-version=...`` with the key in the
        ``api-key`` header (and as a bearer token, which serverless endpoints take), `model` naming the
        deployment on multi-model endpoints (``https://<resource>.services.ai.azure.com/models``).
        ``response_format`` json_schema needs api-version 2024-08-01-preview or later, hence the default.
        """
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=endpoint.rstrip("/"),
            default_query={"api-version": api_version},
            default_headers={"api-key": api_key},
            timeout=timeout_s,
            max_retries=max_retries,
        )
        chat = cls(
            model, client=client, provider="azure_ai", timeout_s=timeout_s, prices=prices, key_env="AZURE_AI_KEY"
        )
        chat._owns_client = True
        return chat

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
        params: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(messages),
            "timeout": timeout_s if timeout_s is not None else self.timeout_s,
        }
        if self.send_temperature:
            params["temperature"] = temperature
        if max_tokens is not None:
            params[self._max_tokens_field] = max_tokens
        if json_schema is not None:
            response_format: ResponseFormat = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": json_schema, "strict": False},
            }
            params["response_format"] = response_format
        with self._errors():
            if on_delta is None:
                text, finish, reported, usage = await self._create(params)
                first_delta_s = None
            else:
                collector = StreamCollector(on_delta, started)
                finish, reported, usage = await self._stream(params, collector)
                text, first_delta_s = collector.text, collector.first_delta_s
        completion = Completion(
            text=text,
            usage=self._usage(reported, *usage),
            model=reported or self.model,
            provider=self.provider,
            latency_s=time.perf_counter() - started,
            structured=json_schema is not None,
            finish_reason=finish,
            first_delta_s=first_delta_s,
        )
        logger.debug(
            "%s %s: %d in, %d out tokens, %.2fs",
            self.provider,
            completion.model,
            completion.usage.input_tokens,
            completion.usage.output_tokens,
            completion.latency_s,
        )
        return completion

    async def _create(self, params: dict[str, Any]) -> tuple[str, str | None, str, tuple[int, int]]:
        response = await self._client.chat.completions.create(**params)
        if not response.choices:
            raise ModelError(f"{self.provider} returned no choices for {self.model!r}", retryable=True)
        choice = response.choices[0]
        if choice.message.refusal:
            said = choice.message.refusal
            raise ModelRefusal(f"{self.provider} model refused: {said}", said=said)
        usage = response.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (0, 0)
        return choice.message.content or "", choice.finish_reason, response.model, tokens

    async def _stream(
        self, params: dict[str, Any], collector: StreamCollector
    ) -> tuple[str | None, str, tuple[int, int]]:
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if self._stream_usage else {}
        stream = await self._client.chat.completions.create(**params, **extra, stream=True)
        finish: str | None = None
        reported = ""
        tokens = (0, 0)
        refusal: list[str] = []
        async with stream:
            async for chunk in stream:
                reported = chunk.model or reported
                if chunk.usage is not None:
                    tokens = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        collector.add(choice.delta.content)
                    if choice.delta.refusal:
                        refusal.append(choice.delta.refusal)
                    if choice.finish_reason is not None:
                        finish = choice.finish_reason
        if finish is None:
            raise stream_cut(self.provider, self.model, len(collector.text))
        if refusal:
            said = "".join(refusal)
            raise ModelRefusal(f"{self.provider} model refused: {said}", said=said)
        return finish, reported, tokens

    def _usage(self, reported: str, input_tokens: int, output_tokens: int) -> Usage:
        # Azure and dated aliases report the real model id; price by it when we know it.
        priced = reported if reported and find_price(reported, self._prices) is not None else self.model
        return Usage(
            calls=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_from_table(priced, input_tokens, output_tokens, self._prices),
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The border: every SDK exception becomes a ModelError (or a ConfigurationError for a bad key)."""
        try:
            yield
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status in {401, 403}:
                raise ConfigurationError(
                    f"{self.provider} rejected the API key (HTTP {status}): {exc.message}; "
                    f"check {self._key_env} or the api_key= argument"
                ) from exc
            raise ModelError(
                f"{self.provider} returned HTTP {status} for {self.model!r}: {exc.message}",
                status_code=status,
                body=body_text(exc.body),
                retryable=is_retryable_status(status),
            ) from exc
        except openai.APITimeoutError as exc:
            raise ModelError(f"{self.provider} timed out ({self.model!r})", retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise ModelError(
                f"{self.provider} connection failed at {self._client.base_url} ({self.model!r}): {_cause(exc)}",
                retryable=True,
            ) from exc
        except openai.APIError as exc:  # an error event inside a stream
            raise ModelError(
                f"{self.provider} failed mid-stream ({self.model!r}): {exc.message}",
                body=body_text(exc.body),
                retryable=True,
            ) from exc
        except openai.OpenAIError as exc:
            raise ModelError(f"{self.provider} client error ({self.model!r}): {exc}") from exc

    async def _close_client(self) -> None:
        await self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIChatModel(provider={self.provider!r}, model={self.model!r})"


def _messages(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            out.append({"role": "system", "content": message.content})
        elif message.role == "user":
            out.append({"role": "user", "content": message.content})
        else:
            out.append({"role": "assistant", "content": message.content})
    return out


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)


__all__ = ["DEFAULT_AZURE_AI_API_VERSION", "DEFAULT_AZURE_API_VERSION", "OpenAIChatModel"]
