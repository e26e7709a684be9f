"""What the worker's tasks accept: line items in several shapes, and an extraction schema in several forms."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from orchestrator.errors import ConfigurationError
from orchestrator.small_model_worker.tasks import inline_refs

if TYPE_CHECKING:
    from orchestrator.rules.models import LineItem, ParsedReceipt

__all__ = ["ItemsLike", "as_line_items", "schema_of"]

ItemsLike = Sequence["LineItem | Mapping[str, Any] | str"]
"""Line items, dicts with their fields, or bare names (items of amount 0)."""


def as_line_items(items: ParsedReceipt | ItemsLike) -> list[LineItem]:
    """Line items from a parsed receipt, line items, dicts or bare names."""
    from orchestrator.rules.models import LineItem, ParsedReceipt

    if isinstance(items, ParsedReceipt):
        return list(items.items)
    out: list[LineItem] = []
    for item in items:
        if isinstance(item, LineItem):
            out.append(item)
        elif isinstance(item, str):
            out.append(LineItem(name=item, amount=0.0))
        else:
            out.append(LineItem.model_validate(item))
    return out


def schema_of(
    schema: type[BaseModel] | Mapping[str, Any] | Sequence[str],
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]] | None]:
    """A JSON Schema for the model, and (for a Pydantic model) a validator of its answer."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        model = schema
        return inline_refs(model.model_json_schema()), lambda data: model.model_validate(data).model_dump(mode="json")
    if isinstance(schema, Mapping):
        return dict(schema), None
    fields = [str(name) for name in schema]
    if not fields:
        raise ConfigurationError("extract_entities needs a schema: a Pydantic model, a JSON Schema or field names")
    text = {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}]}
    properties = dict.fromkeys(fields, text)
    return {"type": "object", "properties": properties, "required": fields, "additionalProperties": False}, None
