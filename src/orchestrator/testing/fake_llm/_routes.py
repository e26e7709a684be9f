"""Which API a request is for (by its path), where it carries its key, and which wire format answers it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.testing.fake_llm import _anthropic, _azure, _ollama, _openai
from orchestrator.testing.fake_llm._request import DEPLOYMENTS_PREFIX

if TYPE_CHECKING:
    from orchestrator.testing.fake_llm._answer import Answer
    from orchestrator.testing.fake_llm._replies import Failure
    from orchestrator.testing.fake_llm._request import RecordedRequest


@dataclass(frozen=True)
class Wire:
    """How one API writes answers and errors.

    Attributes:
        body: the whole answer as the JSON body.
        frames: the answer as a stream, as ``(is_content, bytes)`` frames; content frames are the ones
            paced by the token rate and counted by `Reply.cut_after`.
        error_body: a :class:`Failure` as the JSON body.
    """

    body: Callable[[Answer], dict[str, Any]]
    frames: Callable[[Answer], Iterator[tuple[bool, bytes]]]
    error_body: Callable[[Failure], dict[str, Any]]


WIRES: dict[str, Wire] = {
    "openai": Wire(_openai.body, _openai.frames, _openai.error_body),
    "azure_openai": Wire(_openai.body, _openai.frames, _azure.openai_error_body),
    "azure_ai": Wire(_openai.body, _openai.frames, _azure.ai_error_body),
    "anthropic": Wire(_anthropic.body, _anthropic.frames, _anthropic.error_body),
    "ollama": Wire(_ollama.body, _ollama.frames, _ollama.error_body),
}


def api_of(path: str) -> str:
    """The API a path belongs to: a key of :data:`WIRES`, or ``unknown``."""
    if path == "/v1/chat/completions" or path == "/v1/models":
        return "openai"
    if path.startswith(DEPLOYMENTS_PREFIX) and path.endswith("/chat/completions"):
        return "azure_openai"
    if path == "/v1/messages":
        return "anthropic"
    if path == "/chat/completions" or path.endswith("/models/chat/completions"):
        return "azure_ai"
    if path in {"/api/chat", "/api/generate", "/api/tags"}:
        return "ollama"
    return "unknown"


def keys_sent(request: RecordedRequest) -> set[str]:
    """The API keys a request carries, in the headers its API uses (Ollama has none to check)."""
    headers = request.headers
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    return {
        "openai": {bearer},
        "azure_openai": {headers.get("api-key", "")},
        "azure_ai": {headers.get("api-key", ""), bearer},
        "anthropic": {headers.get("x-api-key", ""), bearer},  # newer SDKs send the key as a bearer token
    }[request.api]
