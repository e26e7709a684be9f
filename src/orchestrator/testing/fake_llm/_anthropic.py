"""The Anthropic messages wire format: forced tools, the JSON message, the SSE events, the error body.

A structured answer goes out the way the SDK asks for one: as the input of the tool that `tool_choice`
forces, streamed as ``input_json_delta`` events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orchestrator.testing.fake_llm._request import forced_tool

if TYPE_CHECKING:
    from orchestrator.testing.fake_llm._answer import Answer
    from orchestrator.testing.fake_llm._replies import Failure

_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def body(a: Answer) -> dict[str, Any]:
    """The whole answer as one message."""
    return _message(a, content=[_block(a, full=True)], stop=_stop_reason(a))


def frames(a: Answer) -> Iterator[tuple[bool, bytes]]:
    """The answer as SSE events, from ``message_start`` to ``message_stop``, one delta per piece."""

    def event(name: str, payload: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()

    message = _message(a, content=[], stop=None)
    yield False, event("message_start", {"type": "message_start", "message": message})
    block = _block(a, full=False)
    yield False, event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    yield False, event("ping", {"type": "ping"})
    for piece in a.pieces:
        delta = (
            {"type": "input_json_delta", "partial_json": piece}
            if a.tool_input is not None
            else {"type": "text_delta", "text": piece}
        )
        yield True, event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    yield False, event("content_block_stop", {"type": "content_block_stop", "index": 0})
    delta_event = {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(a), "stop_sequence": None},
        "usage": {"output_tokens": a.output_tokens},
    }
    yield False, event("message_delta", delta_event)
    yield False, event("message_stop", {"type": "message_stop"})


def error_body(failure: Failure) -> dict[str, Any]:
    """The error in Anthropic's ``{"type": "error", "error": {...}}`` shape."""
    status = failure.status
    kind = _ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    message = failure.message or ("invalid x-api-key" if status == 401 else f"{kind} (fake)")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{uuid.uuid4().hex}"}


def _message(a: Answer, *, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
    return {
        "id": f"msg_{a.ids['id']}",
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": a.input_tokens, "output_tokens": a.output_tokens if stop else 1},
    }


def _block(a: Answer, *, full: bool) -> dict[str, Any]:
    if a.tool_input is not None:
        tool = forced_tool(a.request._body) or {}
        return {
            "type": "tool_use",
            "id": f"toolu_{a.ids['tool']}",
            "name": tool.get("name", "output"),
            "input": a.tool_input if full else {},
        }
    return {"type": "text", "text": a.text if full else ""}


def _stop_reason(a: Answer) -> str:
    return a.reply.finish_reason or ("tool_use" if a.tool_input is not None else "end_turn")
