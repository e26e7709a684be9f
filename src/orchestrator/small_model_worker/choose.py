"""Which small-model back-end to use when the caller did not say, and why (one line for people).

First match wins:

1. an explicit ``backend=``;
2. ``SMALL_MODEL_BACKEND``;
3. ``SMALL_MODEL_BASE_URL`` is set: ``openai_compatible`` (vLLM, llama.cpp server, LM Studio...);
4. ``AZURE_AI_ENDPOINT`` is set: ``azure`` (Azure AI model inference);
5. ``OLLAMA_API_URL`` names a server other than the default (``http://localhost:11434``, which a copied
   ``.env.example`` sets): ``ollama``;
6. otherwise ``embedded``: the MiniLM classifier inside the package, no server, no network.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator._names import known_name
from orchestrator.providers.ollama import DEFAULT_OLLAMA_URL
from orchestrator.settings import Settings

__all__ = ["BACKENDS", "EMBEDDED_MODEL", "SmallModelChoice", "choose_backend"]

BACKENDS: tuple[str, ...] = ("ollama", "openai_compatible", "azure", "transformers", "embedded")
EMBEDDED_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SmallModelChoice:
    """The back-end chosen, its model, and why."""

    backend: str
    model: str
    reason: str

    @property
    def generative(self) -> bool:
        """Whether the back-end writes text (everything but the embedded classifier)."""
        return self.backend != "embedded"

    def describe(self) -> str:
        """``small models: ollama phi3 (SMALL_MODEL_BACKEND=ollama)``."""
        what = "embedded MiniLM all-MiniLM-L6-v2, offline" if self.backend == "embedded" else self.backend
        model = "" if self.backend == "embedded" else f" {self.model}"
        return f"small models: {what}{model} ({self.reason})"


def normalise_backend(name: str) -> str:
    """A back-end name as spelled here, or a ConfigurationError with a suggestion."""
    aliases = {"azure_ai": "azure", "openai": "openai_compatible", "vllm": "openai_compatible"}
    return known_name(name, BACKENDS, "small-model back-end", aliases)


def choose_backend(settings: Settings, backend: str | None = None, model_name: str | None = None) -> SmallModelChoice:
    """Pick the back-end: explicit, else the settings, else embedded (see the module docstring)."""
    if backend is not None:
        name, reason = normalise_backend(backend), "chosen explicitly"
    elif settings.small_model_backend:
        name = normalise_backend(settings.small_model_backend)
        reason = f"SMALL_MODEL_BACKEND={settings.small_model_backend}"
    elif settings.small_model_base_url:
        name, reason = "openai_compatible", "SMALL_MODEL_BASE_URL is set"
    elif settings.azure_ai_endpoint:
        name, reason = "azure", "AZURE_AI_ENDPOINT is set"
    elif settings.ollama_api_url.rstrip("/") != DEFAULT_OLLAMA_URL:
        name, reason = "ollama", f"OLLAMA_API_URL={settings.ollama_api_url}"
    else:
        name = "embedded"
        reason = "no model server configured: SMALL_MODEL_BACKEND, OLLAMA_API_URL and SMALL_MODEL_BASE_URL unset"
    model = EMBEDDED_MODEL if name == "embedded" else (model_name or settings.worker_model)
    return SmallModelChoice(name, model, reason)
