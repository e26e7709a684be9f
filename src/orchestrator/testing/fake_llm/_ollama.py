"""The Ollama wire format: ``/api/chat`` and ``/api/generate`` answers (JSON, or NDJSON lines ending ``done``),
the ``/api/tags`` model list, model-name matching and the error body."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.testing.fake_llm._answer import Answer
    from orchestrator.testing.fake_llm._replies import Failure


def body(a: Answer) -> dict[str, Any]:
    """The whole answer as one final (``done``) line."""
    return _line(a, a.text, done=True)


def frames(a: Answer) -> Iterator[tuple[bool, bytes]]:
    """The answer as NDJSON lines, one per piece, then an empty ``done`` line with the counts."""
    for piece in a.pieces:
        yield True, json.dumps(_line(a, piece, done=False)).encode() + b"\n"
    yield False, json.dumps(_line(a, "", done=True)).encode() + b"\n"


def error_body(failure: Failure) -> dict[str, Any]:
    """The error in Ollama's ``{"error": "..."}`` shape."""
    return {"error": failure.message or f"fake server error {failure.status}"}


def tags_body(names: Sequence[str]) -> dict[str, Any]:
    """The ``GET /api/tags`` list, each name tagged (``:latest`` unless it has a tag)."""
    models = [
        {
            "name": tagged(n),
            "model": tagged(n),
            "modified_at": _now_iso(),
            "size": 2_176_178_913,
            "digest": uuid.uuid5(uuid.NAMESPACE_DNS, n).hex * 2,
            "details": {"format": "gguf", "family": n.split(":")[0], "quantization_level": "Q4_0"},
        }
        for n in names
    ]
    return {"models": models}


def has_model(models: Sequence[str], name: str) -> bool:
    """Whether `name` is one of `models`, as Ollama matches them (``phi3`` is ``phi3:latest``)."""
    return tagged(name) in {tagged(m) for m in models}


def tagged(name: str) -> str:
    """`name` with its tag, ``:latest`` when it has none."""
    return name if ":" in name else f"{name}:latest"


def _line(a: Answer, piece: str, *, done: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"model": a.model, "created_at": _now_iso()}
    if a.request.path.endswith("/api/generate"):
        line["response"] = piece
    else:
        line["message"] = {"role": "assistant", "content": piece}
    line["done"] = done
    if done:
        line |= {
            "done_reason": a.reply.finish_reason or "stop",
            "total_duration": 1_000_000 * (a.input_tokens + a.output_tokens),
            "load_duration": 1_000_000,
            "prompt_eval_count": a.input_tokens,
            "prompt_eval_duration": 500_000 * a.input_tokens,
            "eval_count": a.output_tokens,
            "eval_duration": 20_000_000 * a.output_tokens,
        }
    return line


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
