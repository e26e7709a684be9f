"""Small-model back-ends: generative ones behind one protocol (:mod:`.base`), and the embedded classifier.

=================  ==============================================================================
``ollama``         :class:`.chat.ChatBackend` over Ollama's ``/api/chat`` (``format`` = the JSON Schema)
``openai_compatible``  :class:`.chat.ChatBackend` over an OpenAI-compatible server (``response_format``)
``azure``          :class:`.chat.ChatBackend` over Azure AI model inference (``response_format``)
``transformers``   :class:`.local.TransformersJsonBackend`: a local model, decoding constrained to the schema
``embedded``       :class:`.embedded.EmbeddedClassifier`: MiniLM, a classifier (a cascade tier), not generative
=================  ==============================================================================

Modules are imported when a back-end is made, so importing this package loads no heavy dependency.
"""

from __future__ import annotations

from orchestrator.settings import Settings
from orchestrator.small_model_worker.backends.base import Generated, JsonBackend

__all__ = ["Generated", "JsonBackend", "make_backend"]


def make_backend(
    backend: str,
    model: str,
    settings: Settings,
    *,
    timeout_s: float,
    base_url: str | None = None,
    api_key: str | None = None,
    endpoint: str | None = None,
    device: str | None = None,
) -> JsonBackend:
    """The generative back-end `backend` for `model`; explicit arguments win over `settings`.

    Raises:
        ConfigurationError: an unknown back-end, a missing URL, key or endpoint, or a missing extra.
    """
    if backend == "transformers":
        from orchestrator.small_model_worker.backends.local import TransformersJsonBackend

        return TransformersJsonBackend(model, device=device)
    from orchestrator.small_model_worker.backends.chat import chat_backend

    return chat_backend(
        backend,
        model,
        settings,
        timeout_s=timeout_s,
        max_retries=settings.small_model_max_retries,
        base_url=base_url,
        api_key=api_key,
        endpoint=endpoint,
    )
