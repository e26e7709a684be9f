"""Parse references once, resolve them many times.

`compile_value` turns an argument tree into a tree of small resolver nodes. Literal subtrees are kept
as they are, so a step without references costs nothing to resolve. All functions are pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

RefKind = Literal["step", "input", "item"]
PathPart = str | int

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_PATH = rf"(?:\.{_NAME}|\[-?\d+\])*"
_REF_BODY = (
    rf"(?:(?P<kind>step|input):(?P<name>{_NAME})(?P<path>{_PATH})|item(?::(?P<ipath>{_NAME}{_PATH}|\[-?\d+\]{_PATH}))?)"
)
_WHOLE = re.compile(rf"^{_REF_BODY}$")
_TEMPLATE = re.compile(r"\{\{\s*(?P<body>[^{}]*?)\s*\}\}")
_SEGMENT = re.compile(rf"\.(?P<field>{_NAME})|\[(?P<index>-?\d+)\]")
_LOOKS_LIKE_REF = re.compile(r"^(step|input|item)(:|$)")


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: `step:parse.items[0]` is Ref("step", "parse", ("items", 0))."""

    kind: RefKind
    name: str
    path: tuple[PathPart, ...] = ()

    def __str__(self) -> str:
        text = self.kind if self.kind == "item" and not self.name else f"{self.kind}:{self.name}"
        return text + format_path(self.path, leading_dot=bool(self.name) or self.kind != "item")


def format_path(path: tuple[PathPart, ...], *, leading_dot: bool = True) -> str:
    out = []
    for i, part in enumerate(path):
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(f".{part}" if (i or leading_dot) else f":{part}")
    return "".join(out)


def _parse_path(text: str) -> tuple[PathPart, ...]:
    return tuple(
        m.group("field") if m.group("field") is not None else int(m.group("index")) for m in _SEGMENT.finditer(text)
    )


def parse_ref(text: str) -> Ref | None:
    """Parse a whole-string reference; None when `text` is not one."""
    m = _WHOLE.match(text)
    if m is None:
        return None
    if m.group("kind"):
        return Ref(m.group("kind"), m.group("name"), _parse_path(m.group("path")))  # type: ignore[arg-type]
    ipath = m.group("ipath")
    if not ipath:
        return Ref("item", "")
    # item:name.x -> path ("name", "x"); item:[0] -> (0,)
    return Ref("item", "", _parse_path(ipath if ipath.startswith("[") else "." + ipath))


def looks_like_ref(text: str) -> bool:
    """A string that starts like a reference but does not parse is probably a typo worth reporting."""
    return bool(_LOOKS_LIKE_REF.match(text)) and parse_ref(text) is None and " " not in text


class ResolveError(Exception):
    """A reference could not be followed at run time (missing field, index out of range)."""


# --- compiled nodes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefNode:
    ref: Ref


@dataclass(frozen=True, slots=True)
class TemplateNode:
    parts: tuple[str | Ref, ...]


@dataclass(frozen=True, slots=True)
class DictNode:
    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ListNode:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Literal_:
    value: Any


Node = RefNode | TemplateNode | DictNode | ListNode | Literal_


def compile_value(value: Any) -> Node:
    """Compile an argument value (any JSON) into resolver nodes."""
    if isinstance(value, str):
        ref = parse_ref(value)
        if ref is not None:
            return RefNode(ref)
        if "{{" in value:
            parts = _template_parts(value)
            if any(isinstance(p, Ref) for p in parts):
                return TemplateNode(parts)
        return Literal_(value)
    if isinstance(value, Mapping):
        items = tuple((k, compile_value(v)) for k, v in value.items())
        if all(isinstance(node, Literal_) for _, node in items):
            return Literal_(value)
        return DictNode(items)
    if isinstance(value, list):
        nodes = tuple(compile_value(v) for v in value)
        if all(isinstance(node, Literal_) for node in nodes):
            return Literal_(value)
        return ListNode(nodes)
    return Literal_(value)


def _template_parts(text: str) -> tuple[str | Ref, ...]:
    parts: list[str | Ref] = []
    pos = 0
    for m in _TEMPLATE.finditer(text):
        ref = parse_ref(m.group("body"))
        if ref is None:
            continue
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        parts.append(ref)
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def template_bodies(text: str) -> Iterator[str]:
    """The bodies of every `{{...}}` in a string, whether or not they parse."""
    for m in _TEMPLATE.finditer(text):
        yield m.group("body")


def iter_refs(node: Node) -> Iterator[tuple[Ref, bool]]:
    """Every reference in a compiled tree, with whether it stands alone (True) or inside a template."""
    if isinstance(node, RefNode):
        yield node.ref, True
    elif isinstance(node, TemplateNode):
        for part in node.parts:
            if isinstance(part, Ref):
                yield part, False
    elif isinstance(node, DictNode):
        for _, child in node.items:
            yield from iter_refs(child)
    elif isinstance(node, ListNode):
        for child in node.items:
            yield from iter_refs(child)


def follow(value: Any, path: tuple[PathPart, ...], *, origin: str) -> Any:
    """Follow a path into a value: `.field` on mappings (or attributes), `[n]` on sequences."""
    for i, part in enumerate(path):
        if isinstance(part, int):
            if not isinstance(value, list | tuple):
                raise ResolveError(
                    f"{origin}{format_path(path[:i])} is {_kind(value)}, not a list; cannot take [{part}]"
                )
            try:
                value = value[part]
            except IndexError:
                raise ResolveError(
                    f"{origin}{format_path(path[: i + 1])}: index {part} out of range (length {len(value)})"
                ) from None
        elif isinstance(value, Mapping):
            if part not in value:
                keys = ", ".join(sorted(map(str, value))[:8]) or "none"
                raise ResolveError(f"{origin}{format_path(path[: i + 1])}: no field {part!r} (fields: {keys})")
            value = value[part]
        else:
            raise ResolveError(f"{origin}{format_path(path[:i])} is {_kind(value)}; it has no field {part!r}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


Env = tuple[Mapping[str, Any], Mapping[str, Any], Any]
"""(step outputs, inputs, current item)."""


def lookup(ref: Ref, env: Env) -> Any:
    steps, inputs, item = env
    if ref.kind == "step":
        return follow(steps[ref.name], ref.path, origin=f"step:{ref.name}")
    if ref.kind == "input":
        return follow(inputs[ref.name], ref.path, origin=f"input:{ref.name}")
    return follow(item, ref.path, origin="item")


def as_text(value: Any) -> str:
    """How a value reads inside a `{{...}}` template."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


def resolve(node: Node, env: Env) -> Any:
    """Evaluate a compiled tree against step outputs, inputs and the current item."""
    if isinstance(node, Literal_):
        return node.value
    if isinstance(node, RefNode):
        return lookup(node.ref, env)
    if isinstance(node, DictNode):
        return {k: resolve(child, env) for k, child in node.items}
    if isinstance(node, ListNode):
        return [resolve(child, env) for child in node.items]
    return "".join(part if isinstance(part, str) else as_text(lookup(part, env)) for part in node.parts)
