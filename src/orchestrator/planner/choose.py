"""Which planner to use when the caller did not say: a setting, a key, a local Ollama, or the plan library.

The order (first match wins), each with the reason shown to the user:

1. ``PLANNER_PROVIDER`` names a provider;
2. ``OPENAI_API_KEY`` is set: ``openai``;
3. ``ANTHROPIC_API_KEY`` is set: ``anthropic``;
4. ``AZURE_OPENAI_ENDPOINT`` and ``AZURE_OPENAI_API_KEY`` are set: ``azure_openai``;
5. an Ollama server answers at ``OLLAMA_API_URL`` (one ``GET /api/tags``, bounded to half a second) and has
   a model: ``ollama``;
6. otherwise the offline plan library: known requests only, no model call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from orchestrator._names import known_name
from orchestrator.providers.factory import DEFAULT_MODELS, PROVIDERS
from orchestrator.providers.pricing import PRICES, find_price
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)

LIBRARY = "library"
PLANNER_PROVIDERS: tuple[str, ...] = (*PROVIDERS, LIBRARY)
PROBE_TIMEOUT_S = 0.5
PREFERRED_LOCAL_MODELS = ("qwen2.5", "llama3.1", "llama3.2", "llama3", "mistral", "phi3")
"""Local planners to prefer, best first, when Ollama has several models and PLANNER_MODEL is not set."""


@dataclass(frozen=True)
class ProviderChoice:
    """The planner chosen, and why (one line for people).

    Attributes:
        provider: one of :data:`PLANNER_PROVIDERS`.
        model: the model id (None for the library, or to let the provider pick its default).
        reason: why this one, e.g. ``"OPENAI_API_KEY is set"``.
    """

    provider: str
    model: str | None
    reason: str

    def describe(self) -> str:
        """``planner: openai gpt-4o (OPENAI_API_KEY is set)``."""
        what = self.provider if not self.model else f"{self.provider} {self.model}"
        return f"planner: {what} ({self.reason})"


def normalise_provider(name: str) -> str:
    """A provider name as the planner spells it, or a ConfigurationError with a suggestion."""
    return known_name(name, PLANNER_PROVIDERS, "planner provider")


async def choose_provider(
    settings: Settings,
    *,
    provider: str | None = None,
    model: str | None = None,
    probe_timeout_s: float = PROBE_TIMEOUT_S,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ProviderChoice:
    """Pick the planner: an explicit `provider`, else the settings, else a local Ollama, else the library.

    Args:
        settings: where keys, URLs and PLANNER_PROVIDER / PLANNER_MODEL come from.
        provider: an explicit choice (wins over everything).
        model: an explicit model (wins over PLANNER_MODEL).
        probe_timeout_s: how long to wait for Ollama's ``/api/tags``.
        transport: an httpx transport for the probe (tests).
    """
    planner_model = model or settings.planner_model
    if provider is not None:
        name = normalise_provider(provider)
        return ProviderChoice(name, _model_for(name, model, settings), "chosen explicitly")
    if settings.planner_provider:
        name = normalise_provider(settings.planner_provider)
        if name == "ollama" and not planner_model:
            models = await probe_ollama(settings.ollama_api_url, timeout_s=probe_timeout_s, transport=transport)
            return ProviderChoice(name, pick_local_model(models or ()), f"PLANNER_PROVIDER={settings.planner_provider}")
        return ProviderChoice(name, _model_for(name, model, settings), f"PLANNER_PROVIDER={settings.planner_provider}")
    if settings.openai_api_key:
        return ProviderChoice("openai", planner_model or DEFAULT_MODELS["openai"], "OPENAI_API_KEY is set")
    if settings.anthropic_api_key:
        return ProviderChoice("anthropic", planner_model or DEFAULT_MODELS["anthropic"], "ANTHROPIC_API_KEY is set")
    if settings.azure_openai_endpoint and settings.azure_openai_api_key:
        deployment = model or settings.azure_openai_deployment
        return ProviderChoice("azure_openai", deployment, "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY are set")
    url = settings.ollama_api_url
    models = await probe_ollama(url, timeout_s=probe_timeout_s, transport=transport)
    if models:
        chosen = planner_model or pick_local_model(models)
        return ProviderChoice("ollama", chosen, f"no API key is set, and a local Ollama answered at {url}")
    why = "no Ollama answered" if models is None else "Ollama has no models"
    return ProviderChoice(
        LIBRARY,
        None,
        f"no PLANNER_PROVIDER, OPENAI_API_KEY, ANTHROPIC_API_KEY or Azure OpenAI key is set, and {why} at {url}: "
        "serving known requests from the plan library, with no model call",
    )


def _model_for(name: str, model: str | None, settings: Settings) -> str | None:
    if name == LIBRARY:
        return None
    if model:
        return model
    planner_model = settings.planner_model
    if planner_model:
        configured = normalise_provider(settings.planner_provider) if settings.planner_provider else None
        if configured == name or (configured is None and _fits(name, planner_model)):
            return planner_model
    if name == "azure_openai":
        return settings.azure_openai_deployment
    if name == "openai_compatible":
        return planner_model
    return DEFAULT_MODELS.get(name)


def _fits(provider: str, model: str) -> bool:
    """Whether PLANNER_MODEL (set without PLANNER_PROVIDER) plausibly names a model of `provider`."""
    claude = model.lower().startswith("claude")
    hosted = find_price(model, PRICES) is not None
    if provider == "anthropic":
        return claude
    if provider in ("openai", "azure_openai"):
        return hosted and not claude
    if provider == "ollama":
        return not hosted
    return True


async def probe_ollama(
    base_url: str, *, timeout_s: float = PROBE_TIMEOUT_S, transport: httpx.AsyncBaseTransport | None = None
) -> list[str] | None:
    """The model names an Ollama server at `base_url` has, or None when nothing answers in time."""
    url = base_url.rstrip("/") + "/api/tags"
    try:
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout_s)) as client:
            response = await client.get(url)
        if response.status_code != 200:
            return None
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        logger.debug("no Ollama at %s: %s", url, exc)
        return None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]


def pick_local_model(models: Sequence[str]) -> str | None:
    """The best planner among installed Ollama models (see :data:`PREFERRED_LOCAL_MODELS`), else the first."""
    for preferred in PREFERRED_LOCAL_MODELS:
        for name in models:
            if name == preferred or name.startswith((preferred + ":", preferred + "-")):
                return name
    return models[0] if models else None


__all__ = [
    "LIBRARY",
    "PLANNER_PROVIDERS",
    "ProviderChoice",
    "choose_provider",
    "normalise_provider",
    "pick_local_model",
    "probe_ollama",
]
