"""Literal arguments against the tool's whole JSON Schema, with a validator built once per tool and argument.

The schema a tool publishes is what the planner sees, and the only description an MCP tool or a sandbox
tool has, so literal values are checked against exactly that: types (a boolean is not an integer),
minimum and maximum, enums, lengths, patterns, nested objects and arrays. The validator is
`jsonschema-rs <https://pypi.org/project/jsonschema-rs/>`_: a complete, maintained JSON Schema
implementation (drafts 4 to 2020-12) in Rust. Pydantic only validates the types it generated a schema
from, not arbitrary schemas; the pure-Python ``jsonschema`` costs tens of microseconds a value, where
this costs well under one (see ``orchestrator bench``). For plain-typed arguments of function tools the
validator (check_plan) first asks the tool's exact type check, which says what such a schema says; this
module is then only asked to word the error, so most plans never load the validator at all.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from orchestrator.plan.refs import format_path

logger = logging.getLogger(__name__)

_MAX_MESSAGE = 200

_by_tool: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_by_id: dict[int, tuple[Any, dict[str, Any]]] = {}  # tools that cannot be weakly referenced (rare)


def _validators(tool: Any) -> dict[str, Any]:
    try:
        found = _by_tool.get(tool)
        if found is None:
            found = _by_tool[tool] = {}
        return found
    except TypeError:
        entry = _by_id.get(id(tool))
        if entry is None or entry[0] is not tool:
            if len(_by_id) > 256:
                _by_id.clear()
            entry = _by_id[id(tool)] = (tool, {})
        return entry[1]


def _build(schema: Mapping[str, Any], name: str) -> Any:
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not isinstance(props.get(name), Mapping):
        return None
    sub = dict(props[name])
    for defs in ("$defs", "definitions"):
        if defs in schema:
            sub[defs] = schema[defs]
    import jsonschema_rs

    try:
        return jsonschema_rs.validator_for(sub)
    except Exception as exc:  # a schema the validator cannot read: the tool's own checks still run
        logger.debug("no JSON Schema validator for argument %r: %s", name, exc)
        return None


def validator_for(tool: Any, name: str) -> Any:
    """The JSON Schema validator of argument `name` of `tool` (built on first use), or None without a schema."""
    validators = _validators(tool)
    if name in validators:
        return validators[name]
    validator = validators[name] = _build(tool.spec.input_schema, name)
    return validator


def literal_errors(tool: Any, name: str, value: Any) -> list[tuple[str, str]]:
    """Problems of a literal `value` for argument `name` of `tool`, as (path inside the value, message).

    Empty when the value is valid, or when the tool's schema says nothing about that argument.
    """
    validator = validator_for(tool, name)
    if validator is None:
        return []
    try:
        if validator.is_valid(value):
            return []
        errors = list(validator.iter_errors(value))
    except (ValueError, TypeError, OverflowError, UnicodeError) as exc:
        return [("", f"is not JSON data ({type(exc).__name__})")]
    out: list[tuple[str, str]] = []
    for error in errors:
        message = str(error.message)
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        out.append((format_path(tuple(error.instance_path)), message))
    return out
