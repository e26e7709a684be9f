"""Small questions about JSON Schemas: what lies at a path, and which JSON types a schema admits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.plan.refs import PathPart

Schema = Mapping[str, Any]


def deref(schema: Schema, root: Schema) -> Schema:
    """Follow local `$ref`s (`#/$defs/Name`) until a concrete schema."""
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = str(schema["$ref"])
        if not ref.startswith("#/"):
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        schema = node if isinstance(node, Mapping) else {}
        seen += 1
    return schema


def _branches(schema: Schema) -> list[Schema] | None:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [s for s in schema[key] if isinstance(s, Mapping)]
    return None


def types_of(schema: Schema | None, root: Schema) -> frozenset[str] | None:
    """The JSON types a schema admits, or None when it admits anything (or we cannot tell)."""
    if schema is None:
        return None
    schema = deref(schema, root)
    branches = _branches(schema)
    if branches is not None:
        out: set[str] = set()
        for branch in branches:
            sub = types_of(branch, root)
            if sub is None:
                return None
            out |= sub
        return frozenset(out)
    if "const" in schema:
        return frozenset({json_type(schema["const"]) or "object"})
    if "enum" in schema:
        return frozenset(json_type(v) or "object" for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, str):
        return frozenset({kind})
    if isinstance(kind, list):
        return frozenset(str(k) for k in kind)
    if "properties" in schema:
        return frozenset({"object"})
    if "items" in schema or "prefixItems" in schema:
        return frozenset({"array"})
    return None


def json_type(value: Any) -> str | None:
    """The JSON Schema type of a Python value (None for a value JSON cannot hold)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return None


def compatible(source: frozenset[str] | None, target: frozenset[str] | None) -> bool:
    """Whether a value of one of `source` types can be passed where `target` types are accepted."""
    if source is None or target is None:
        return True
    widened = set(target)
    if "number" in widened:
        widened.add("integer")
    return bool(set(source) & widened)


def at_path(schema: Schema | None, path: tuple[PathPart, ...], root: Schema) -> tuple[Schema | None, str | None]:
    """The sub-schema at `path`: (schema, None), (None, None) when unknown, or (None, error) when absent."""
    current: Schema | None = schema
    for i, part in enumerate(path):
        if current is None:
            return None, None
        current = deref(current, root)
        branches = _branches(current)
        if branches is not None:
            found = [sub for sub in (at_path(b, path[i:], root) for b in branches) if sub[1] is None]
            if not found:
                return None, at_path(branches[0], path[i:], root)[1] if branches else None
            schemas = [s for s, _ in found]
            return (schemas[0] if len(schemas) == 1 and schemas[0] is not None else None), None
        kinds = types_of(current, root)
        if isinstance(part, int):
            if kinds is not None and "array" not in kinds:
                return None, f"is not a list, so [{part}] does not apply"
            items = current.get("items")
            current = items if isinstance(items, Mapping) else None
            continue
        if kinds is not None and "object" not in kinds:
            return None, f"is {'/'.join(sorted(kinds))}, which has no field {part!r}"
        props = current.get("properties")
        if isinstance(props, Mapping) and part in props:
            current = props[part]
            continue
        extra = current.get("additionalProperties")
        if isinstance(extra, Mapping):
            current = extra
            continue
        if isinstance(props, Mapping) and (extra is False or extra is None):
            known = ", ".join(sorted(props)) or "none"
            return None, f"has no field {part!r} (fields: {known})"
        current = None
    return current, None
