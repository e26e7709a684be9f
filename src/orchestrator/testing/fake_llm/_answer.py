"""One scripted reply rendered for one request: its text, streamed pieces, token counts, pace and ids.

The wire modules (:mod:`._openai`, :mod:`._anthropic`, :mod:`._ollama`) write an :class:`Answer` in their
API's format, so every API reports the same text and usage for the same reply.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.testing.fake_llm._replies import Reply
from orchestrator.testing.fake_llm._request import RecordedRequest, forced_tool


class Pace(Protocol):
    """What rendering needs from the server (:class:`~orchestrator.testing.fake_llm.FakeLLMServer`)."""

    @property
    def chunk_chars(self) -> int: ...
    @property
    def tokens_per_s(self) -> float | None: ...
    @property
    def model_aliases(self) -> Mapping[str, str]: ...


@dataclass
class Answer:
    """One reply, rendered for one request."""

    request: RecordedRequest
    reply: Reply
    text: str
    tool_input: dict[str, Any] | None
    pieces: list[str]
    input_tokens: int
    output_tokens: int
    rate: float | None
    model: str
    ids: dict[str, str] = field(default_factory=dict)


def render(fake: Pace, request: RecordedRequest, reply: Reply) -> Answer:
    """Fill in what `reply` leaves to the server: ~4-character pieces, estimated usage, pace, model id."""
    text = reply.text if reply.text is not None else (json.dumps(reply.data) if reply.data is not None else "")
    tool_input = tool_input_of(request, reply, text)
    if tool_input is not None:
        text = json.dumps(tool_input)
    size = fake.chunk_chars
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    estimate = sum(4 + math.ceil(len(m["content"]) / 4) for m in request.messages) + 3
    return Answer(
        request=request,
        reply=reply,
        text=text,
        tool_input=tool_input,
        pieces=pieces,
        input_tokens=reply.input_tokens if reply.input_tokens is not None else estimate,
        output_tokens=reply.output_tokens if reply.output_tokens is not None else max(1, len(pieces)),
        rate=reply.tokens_per_s if reply.tokens_per_s is not None else fake.tokens_per_s,
        model=fake.model_aliases.get(request.model, request.model),
        ids={"id": uuid.uuid4().hex[:24], "tool": uuid.uuid4().hex[:24]},
    )


def tool_input_of(request: RecordedRequest, reply: Reply, text: str) -> dict[str, Any] | None:
    """The forced tool's input to answer with: the reply's JSON object, when an Anthropic request forces a tool."""
    if request.api != "anthropic" or forced_tool(request._body) is None:
        return None
    candidate = reply.data if reply.data is not None else _maybe_json(text)
    return candidate if isinstance(candidate, dict) else None


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
