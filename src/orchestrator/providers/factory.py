"""Pick a model back-end by name: explicit arguments first, then :class:`~orchestrator.settings.Settings`.

    >>> model = make_chat_model("ollama", "phi3", base_url="http://localhost:11434")  # doctest: +SKIP
    >>> completion = await model.complete([Message.user("Hi")])  # doctest: +SKIP

A missing key or endpoint is a :class:`~orchestrator.errors.ConfigurationError` naming both remedies,
the environment variable and the argument. The SDK adapters are imported only when asked for, so the
``openai`` and ``anthropic`` extras stay optional.
"""

from __future__ import annotations

from typing import Any

from orchestrator._names import known_name
from orchestrator.errors import ConfigurationError
from orchestrator.providers.base import ChatModel
from orchestrator.providers.pricing import PRICES, find_price
from orchestrator.settings import Settings, current_settings

PROVIDERS: tuple[str, ...] = ("anthropic", "azure_ai", "azure_openai", "ollama", "openai", "openai_compatible")

DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-5-5",
    "ollama": "llama3.1",
}

_COMMON = frozenset({"timeout_s", "max_retries", "prices"})
_OPTIONS: dict[str, frozenset[str]] = {
    "openai": _COMMON | {"api_key", "base_url", "client"},
    "openai_compatible": _COMMON | {"api_key", "base_url", "client", "stream_usage"},
    "azure_openai": _COMMON | {"api_key", "endpoint", "api_version", "deployment"},
    "azure_ai": _COMMON | {"api_key", "endpoint", "api_version"},
    "anthropic": _COMMON | {"api_key", "base_url", "client", "default_max_tokens"},
    "ollama": _COMMON | {"base_url", "client", "transport", "backoff_s", "max_retry_after_s", "options"},
}


def make_chat_model(
    provider: str, model: str | None = None, *, settings: Settings | None = None, **overrides: Any
) -> ChatModel:
    """Build the chat model for `provider`.

    Args:
        provider: one of ``openai``, ``anthropic``, ``ollama``, ``openai_compatible``, ``azure_openai``,
            ``azure_ai`` (Azure AI model inference).
        model: the model id (Azure: the deployment). Defaults: ``PLANNER_MODEL`` when ``PLANNER_PROVIDER``
            names this provider, else ``gpt-4o``, ``claude-sonnet-5-5``, ``llama3.1`` (Ollama also takes a
            local ``PLANNER_MODEL`` when no provider is set), and ``WORKER_MODEL`` for ``openai_compatible`` and
            ``azure_ai``.
        settings: where keys and endpoints come from when not passed (default: :func:`current_settings`).
        **overrides: explicit options that win over settings: ``api_key``, ``base_url``, ``timeout_s``,
            ``max_retries``, ``prices``, ``client``; Azure ``endpoint``, ``api_version``, ``deployment``;
            Ollama ``transport``, ``backoff_s``, ``options``.

    Raises:
        ConfigurationError: unknown provider or option, a missing key or endpoint, or a missing SDK.
    """
    name = known_name(provider, PROVIDERS, "model provider")
    unknown = sorted(set(overrides) - _OPTIONS[name])
    if unknown:
        raise ConfigurationError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for provider {name!r}; "
            f"valid: {', '.join(sorted(_OPTIONS[name]))}"
        )
    settings = settings if settings is not None else current_settings()
    options = {k: v for k, v in overrides.items() if v is not None}
    if name == "ollama":
        return _ollama(_default_model(name, model, settings), settings, options)
    if name == "anthropic":
        return _anthropic(_default_model(name, model, settings), settings, options)
    if name == "azure_openai":
        return _azure(model, settings, options)
    if name == "azure_ai":
        return _azure_ai(model, settings, options)
    return _openai(name, model, settings, options)


def _default_model(name: str, model: str | None, settings: Settings) -> str:
    if model:
        return model
    planner = settings.planner_model
    if planner and settings.planner_provider == name:
        return planner
    # An unconfigured provider with a local-looking PLANNER_MODEL (not a priced hosted id) means Ollama.
    if name == "ollama" and planner and settings.planner_provider is None and find_price(planner, PRICES) is None:
        return planner
    return DEFAULT_MODELS[name]


def _require(value: str | None, what: str, env: str, arg: str, provider: str) -> str:
    if not value:
        raise ConfigurationError(f"{provider} needs {what}: set {env} or pass {arg}=")
    return value


def _openai(name: str, model: str | None, settings: Settings, options: dict[str, Any]) -> ChatModel:
    try:
        from orchestrator.providers.openai import OpenAIChatModel
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from exc
    if name == "openai":
        if "client" not in options:
            options["api_key"] = _require(
                options.get("api_key") or settings.openai_api_key, "an API key", "OPENAI_API_KEY", "api_key", name
            )
        options.setdefault("base_url", settings.openai_base_url)
        return OpenAIChatModel(_default_model(name, model, settings), provider=name, **options)
    if "client" not in options:
        options["base_url"] = _require(
            options.get("base_url") or settings.small_model_base_url,
            "the server's URL (e.g. http://localhost:8000/v1)",
            "SMALL_MODEL_BASE_URL",
            "base_url",
            name,
        )
    options.setdefault("api_key", settings.small_model_api_key)
    return OpenAIChatModel(model or settings.worker_model, provider=name, key_env="SMALL_MODEL_API_KEY", **options)


def _azure(model: str | None, settings: Settings, options: dict[str, Any]) -> ChatModel:
    try:
        from orchestrator.providers.openai import DEFAULT_AZURE_API_VERSION, OpenAIChatModel
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from exc
    provider = "azure_openai"
    endpoint = _require(
        options.pop("endpoint", None) or settings.azure_openai_endpoint,
        "an endpoint",
        "AZURE_OPENAI_ENDPOINT",
        "endpoint",
        provider,
    )
    api_key = _require(
        options.pop("api_key", None) or settings.azure_openai_api_key,
        "an API key",
        "AZURE_OPENAI_API_KEY",
        "api_key",
        provider,
    )
    deployment = _require(
        options.pop("deployment", None) or model or settings.azure_openai_deployment,
        "a deployment name",
        "AZURE_OPENAI_DEPLOYMENT",
        "deployment",
        provider,
    )
    api_version = options.pop("api_version", None) or settings.openai_api_version or DEFAULT_AZURE_API_VERSION
    return OpenAIChatModel.azure(deployment, endpoint=endpoint, api_key=api_key, api_version=api_version, **options)


def _azure_ai(model: str | None, settings: Settings, options: dict[str, Any]) -> ChatModel:
    try:
        from orchestrator.providers.openai import DEFAULT_AZURE_AI_API_VERSION, OpenAIChatModel
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from exc
    provider = "azure_ai"
    endpoint = _require(
        options.pop("endpoint", None) or settings.azure_ai_endpoint,
        "the model inference endpoint (e.g. https://<resource>.services.ai.azure.com/models)",
        "AZURE_AI_ENDPOINT",
        "endpoint",
        provider,
    )
    api_key = _require(
        options.pop("api_key", None) or settings.azure_ai_key, "an API key", "AZURE_AI_KEY", "api_key", provider
    )
    api_version = options.pop("api_version", None) or settings.azure_ai_api_version or DEFAULT_AZURE_AI_API_VERSION
    return OpenAIChatModel.azure_ai(
        model or settings.worker_model, endpoint=endpoint, api_key=api_key, api_version=api_version, **options
    )


def _anthropic(model: str, settings: Settings, options: dict[str, Any]) -> ChatModel:
    try:
        from orchestrator.providers.anthropic import AnthropicChatModel
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from exc
    if "client" not in options:
        options["api_key"] = _require(
            options.get("api_key") or settings.anthropic_api_key,
            "an API key",
            "ANTHROPIC_API_KEY",
            "api_key",
            "anthropic",
        )
    options.setdefault("base_url", settings.anthropic_base_url)
    return AnthropicChatModel(model, **options)


def _ollama(model: str, settings: Settings, options: dict[str, Any]) -> ChatModel:
    from orchestrator.providers.ollama import OllamaChatModel

    options.setdefault("base_url", settings.ollama_api_url)
    return OllamaChatModel(model, **options)


__all__ = ["DEFAULT_MODELS", "PROVIDERS", "make_chat_model"]
