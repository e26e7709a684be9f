"""The model side of each small-model task: its prompt, the JSON Schema the answer must follow, and how the
answer is checked.

Every call asks for JSON matching a schema, natively where the back-end can enforce it (Ollama ``format``,
OpenAI-compatible and Azure ``response_format``, constrained decoding in the transformers back-end). The
schema is also written into the prompt, for models that only read it. The input travels as JSON after an
``INPUT:`` line, so a test double (``orchestrator.testing.fake_small_model``) can read it back.

Label tasks (classify, categorize, sentiment) are batched: many items in one call, one answer per item in
the items' order, the count fixed by ``minItems``/``maxItems`` and each label by an ``enum``. Answers are
read as :mod:`orchestrator.model_answers` says: reasoning blocks skipped, two JSON objects or a refusal
refused, a label written loosely (case, punctuation, quoted in prose) mapped onto the known one, two labels
in one answer fed back as ambiguous, and a confidence given as a string parsed, else left empty (None),
never invented. A stated confidence outside [0, 1] is clipped rather than rejected.

:data:`PROMPT_VERSION` is part of every cache key: change a prompt, bump it, and old answers are not reused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.model_answers import (
    AmbiguousLabel,
    json_objects,
    match_label,
    read_confidence,
    refusal,
    strip_reasoning,
)
from orchestrator.providers.base import Message

__all__ = [
    "PROMPT_VERSION",
    "InvalidAnswer",
    "ReceiptAnswer",
    "ReceiptItemAnswer",
    "check_against_schema",
    "extract_messages",
    "inline_refs",
    "label_messages",
    "label_schema",
    "parse_json_answer",
    "read_labels",
    "read_receipt",
    "receipt_messages",
    "receipt_schema",
    "summary_messages",
    "summary_schema",
]

PROMPT_VERSION = "1"

_LABEL_SYSTEM = (
    "You label short texts. For each item in INPUT, in order, choose exactly one label from the allowed labels "
    "(their meanings are given) and say how sure you are, from 0 to 1. Answer with JSON only, matching SCHEMA: "
    'one {"label", "confidence"} per item, as many answers as items, in the items\' order.'
)
_RECEIPT_SYSTEM = (
    "You read a receipt's text (from OCR) and extract: merchant, date (YYYY-MM-DD), currency (ISO 4217 code), "
    "subtotal, tax, total, and every purchased line item with its name, quantity, unit price and line amount. "
    "Totals, tax, payment, change and loyalty lines are not items. Use null for what is not printed. "
    "Answer with JSON only, matching SCHEMA."
)
_EXTRACT_SYSTEM = (
    "You extract information from a text. Fill every field of SCHEMA from the text; use null (or an empty list) "
    "for what the text does not say. Never invent values. Answer with JSON only, matching SCHEMA."
)
_SUMMARY_SYSTEM = "You summarize texts faithfully and briefly. Answer with JSON only, matching SCHEMA."


class InvalidAnswer(ValueError):
    """A model's answer is not JSON, or does not match the schema asked for."""


def _user(payload: Any, schema: Mapping[str, Any]) -> Message:
    text = "INPUT:\n" + json.dumps(payload, ensure_ascii=False) + "\n\nSCHEMA:\n" + json.dumps(schema)
    return Message.user(text)


def parse_json_answer(text: str, *, truncated: bool = False) -> Any:
    """The answer as JSON; tolerates a code fence, prose or reasoning blocks around one object.

    Raises:
        InvalidAnswer: not JSON, several JSON objects, a refusal, or (with `truncated`) cut at the output
            limit; the message is the feedback for the model.
    """
    cut = " (the answer was cut off at the output limit: answer more briefly)" if truncated else ""
    try:  # plain JSON as it is (a "<think>" inside one of its strings is just text)
        return json.loads(text)
    except ValueError:
        pass
    visible = strip_reasoning(text)
    stripped = visible.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    said = refusal(visible)
    if said is not None:
        raise InvalidAnswer(f"the model declined instead of answering: {said!r}")
    objects, unclosed = json_objects(visible)
    if len(objects) > 1:
        raise InvalidAnswer(f"the answer holds {len(objects)} separate JSON objects; answer with exactly one{cut}")
    if objects:
        return objects[0]
    if unclosed or truncated:
        raise InvalidAnswer(f"the JSON is not complete{cut or ' (a closing brace is missing)'}: {text[-120:]!r}")
    raise InvalidAnswer(f"not JSON: {text[:120]!r}")


# -- label tasks: classify, categorize, sentiment -----------------------------------------------------


def label_schema(labels: Sequence[str], n: int) -> dict[str, Any]:
    """Exactly `n` answers, each a label from `labels` and a confidence."""
    answer = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(labels)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["label", "confidence"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"answers": {"type": "array", "items": answer, "minItems": n, "maxItems": n}},
        "required": ["answers"],
        "additionalProperties": False,
    }


def label_messages(
    texts: Sequence[str], labels: Sequence[str], descriptions: Mapping[str, str], *, instruction: str = ""
) -> tuple[list[Message], dict[str, Any]]:
    """The conversation and schema for labelling `texts` in one call."""
    schema = label_schema(labels, len(texts))
    payload = {
        "labels": {label: descriptions.get(label, label.replace("_", " ")) for label in labels},
        "items": list(texts),
    }
    system = _LABEL_SYSTEM + (f" {instruction}" if instruction else "")
    return [Message.system(system), _user(payload, schema)], schema


def read_labels(data: Any, labels: Sequence[str], n: int) -> list[tuple[str, float | None] | None]:
    """Per item, (label, confidence), or None for an answer that is missing or names no allowed label.

    A label is matched loosely (:func:`~orchestrator.model_answers.match_label`); a confidence is read by
    :func:`~orchestrator.model_answers.read_confidence` (None when it is missing or not a number).

    Raises:
        InvalidAnswer: `data` is not ``{"answers": [...]}`` with `n` answers, or an answer names two labels.
    """
    if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
        raise InvalidAnswer('expected an object {"answers": [...]}')
    answers = data["answers"]
    if len(answers) != n:
        raise InvalidAnswer(f"expected {n} answers, one per item, got {len(answers)}")
    out: list[tuple[str, float | None] | None] = []
    for index, answer in enumerate(answers):
        if not isinstance(answer, dict):
            out.append(None)
            continue
        try:
            label = match_label(answer.get("label"), labels)
        except AmbiguousLabel as exc:
            raise InvalidAnswer(f"answer {index + 1} is ambiguous: {exc}") from None
        if label is None:
            out.append(None)
            continue
        out.append((label, read_confidence(answer.get("confidence"))))
    if all(item is None for item in out):
        raise InvalidAnswer(f"no answer names one of the allowed labels {list(labels)[:10]}")
    return out


# -- receipts -----------------------------------------------------------------------------------------


class ReceiptItemAnswer(BaseModel):
    """One line item, as the model is asked to write it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    quantity: float = 1.0
    unit_price: float | None = None
    amount: float


class ReceiptAnswer(BaseModel):
    """A parsed receipt, as the model is asked to write it."""

    model_config = ConfigDict(extra="forbid")

    merchant: str | None = Field(default=None, max_length=80)
    date: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")
    currency: str | None = Field(default=None, max_length=3, description="ISO 4217")
    subtotal: float | None = None
    tax: float | None = None
    total: float | None = None
    items: list[ReceiptItemAnswer] = Field(default_factory=list, max_length=100)


def receipt_schema() -> dict[str, Any]:
    """The receipt answer's JSON Schema, with no ``$ref`` (not every server's grammar converter follows them)."""
    return inline_refs(ReceiptAnswer.model_json_schema())


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every local ``#/$defs/...`` reference replaced by its definition, and ``$defs`` dropped."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def receipt_messages(text: str) -> tuple[list[Message], dict[str, Any]]:
    """The conversation and schema for parsing one receipt."""
    schema = receipt_schema()
    return [Message.system(_RECEIPT_SYSTEM), _user({"receipt": text}, schema)], schema


def read_receipt(data: Any) -> ReceiptAnswer:
    """The receipt answer, validated.

    Raises:
        InvalidAnswer: it does not match the schema.
    """
    try:
        return ReceiptAnswer.model_validate(data)
    except ValidationError as exc:
        raise InvalidAnswer(_first_error(exc)) from None


# -- extraction and summaries -------------------------------------------------------------------------


def extract_messages(text: str, schema: Mapping[str, Any]) -> list[Message]:
    """The conversation for extracting `schema`'s fields from `text`."""
    return [Message.system(_EXTRACT_SYSTEM), _user({"text": text}, schema)]


def summary_schema(max_chars: int = 600) -> dict[str, Any]:
    """``{"summary": "..."}``."""
    return {
        "type": "object",
        "properties": {"summary": {"type": "string", "maxLength": max_chars}},
        "required": ["summary"],
        "additionalProperties": False,
    }


def summary_messages(text: str, sentences: int) -> tuple[list[Message], dict[str, Any]]:
    """The conversation and schema for summarizing `text` in at most `sentences` sentences."""
    schema = summary_schema()
    system = f"{_SUMMARY_SYSTEM} Use at most {sentences} sentence{'s' if sentences != 1 else ''}."
    return [Message.system(system), _user({"text": text}, schema)], schema


_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def check_against_schema(value: Any, schema: Mapping[str, Any], where: str = "answer") -> None:
    """Check `value` against the common core of JSON Schema: type, enum, properties, required, items,
    additionalProperties false, anyOf. (Enough for the schemas a user hands `extract_entities`; our own
    tasks are validated by Pydantic.)

    Raises:
        InvalidAnswer: the first mismatch, with its path.
    """
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                check_against_schema(value, option, where)
                return
            except InvalidAnswer:
                continue
        raise InvalidAnswer(f"{where}: matches none of the allowed shapes")
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_is(value, k) for k in kinds):
        raise InvalidAnswer(f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise InvalidAnswer(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = [name for name in schema.get("required", []) if name not in value]
        if missing:
            raise InvalidAnswer(f"{where}: missing {', '.join(missing)}")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(properties))
            if extra:
                raise InvalidAnswer(f"{where}: unexpected {', '.join(extra)}")
        for name, sub in properties.items():
            if name in value and isinstance(sub, Mapping):
                check_against_schema(value[name], sub, f"{where}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, element in enumerate(value):
            check_against_schema(element, schema["items"], f"{where}[{i}]")


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    expected = _TYPES.get(kind)
    return expected is None or isinstance(value, expected)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "answer"
    return f"{where}: {error['msg']}"
