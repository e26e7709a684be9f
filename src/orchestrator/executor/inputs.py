"""Run inputs: check them against the plan's declared inputs, fill defaults, and read `k=v` pairs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.errors import InputError
from orchestrator.plan.model import InputSpec
from orchestrator.plan.refs import format_path
from orchestrator.plan.source import check_values, parse_json_int

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def prepare_inputs(specs: Mapping[str, InputSpec], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Declared inputs with defaults filled in; an undeclared, missing or mistyped input is an InputError."""
    given = dict(given or {})
    problems: list[str] = []
    unknown = sorted(set(given) - set(specs))
    if unknown:
        declared = ", ".join(sorted(specs)) or "none"
        problems.append(
            f"undeclared input{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (declared: {declared})"
        )
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in given:
            value = given[name]
            expected = _PY_TYPES.get(spec.type)
            wrong_bool = spec.type in ("number", "integer") and isinstance(value, bool)
            # The values a plan may not hold (NUL, lone surrogates, numbers out of range) first, then the type.
            hostile = check_values(value)[:1]
            for path, _, message in hostile:
                problems.append(f"input {name!r}{format_path(path)}: {message}")
            if not hostile and expected is not None and (not isinstance(value, expected) or wrong_bool):
                problems.append(f"input {name!r} should be {spec.type}, got {type(value).__name__} {value!r:.80}")
            values[name] = value
        elif spec.is_required:
            about = f" ({spec.description})" if spec.description else ""
            problems.append(f"missing input {name!r}{about}: pass --input {name}=...")
        else:
            values[name] = spec.default
    if problems:
        raise InputError("; ".join(problems))
    return values


def parse_input_pairs(pairs: Iterable[str], specs: Mapping[str, InputSpec]) -> dict[str, Any]:
    """Turn `name=value` strings into typed inputs: strings stay text, other declared types are read as JSON."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InputError(f"--input {pair!r}: expected NAME=VALUE")
        spec = specs.get(name)
        if spec is None or spec.type == "string":
            values[name] = raw
            continue
        try:
            values[name] = json.loads(raw, parse_int=parse_json_int)
        except (json.JSONDecodeError, RecursionError):
            if spec.type == "any":
                values[name] = raw
            else:
                raise InputError(f"--input {name}={raw!r:.60}: expected {spec.type} (as JSON)") from None
    return values
