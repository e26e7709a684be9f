"""The OpenAI chat completions wire format: the JSON completion, the SSE chunks, the error body, the model list.

Azure OpenAI and Azure AI answer in this format too; only their errors differ (see :mod:`._azure`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.testing.fake_llm._answer import Answer
    from orchestrator.testing.fake_llm._replies import Failure

_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
}


def body(a: Answer) -> dict[str, Any]:
    """The whole answer as one ``chat.completion``."""
    return {
        "id": f"chatcmpl-{a.ids['id']}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": a.model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": a.text, "refusal": None},
                "logprobs": None,
                "finish_reason": a.reply.finish_reason or "stop",
            }
        ],
        "usage": _usage(a),
    }


def frames(a: Answer) -> Iterator[tuple[bool, bytes]]:
    """The answer as ``data:`` chunks ending ``[DONE]``, with a usage chunk when `stream_options` asks."""
    with_usage = bool((a.request._body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{a.ids['id']}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": a.model,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        payload = base | {"choices": [choice]} | ({"usage": None} if with_usage else {})
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    yield False, chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in a.pieces:
        yield True, chunk({"content": piece})
    yield False, chunk({}, a.reply.finish_reason or "stop")
    if with_usage:
        yield False, b"data: " + json.dumps(base | {"choices": [], "usage": _usage(a)}).encode() + b"\n\n"
    yield False, b"data: [DONE]\n\n"


def error_body(failure: Failure) -> dict[str, Any]:
    """The error in OpenAI's ``{"error": {"message", "type", "param", "code"}}`` shape."""
    kind, code, message = _ERRORS.get(failure.status, ("server_error", None, "The server had an error."))
    return {"error": {"message": failure.message or message, "type": kind, "param": None, "code": code}}


def models_body(names: Sequence[str]) -> dict[str, Any]:
    """The ``GET /v1/models`` list."""
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
    return {"object": "list", "data": data}


def _usage(a: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
    }
