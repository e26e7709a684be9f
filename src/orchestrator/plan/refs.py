"""Parse references once, resolve them many times.

`compile_value` turns an argument tree into a tree of small resolver nodes. Literal subtrees are kept
as they are, so a step without references costs nothing to resolve. All functions are pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NamedTuple

RefKind = Literal["step", "input", "item"]
PathPart = str | int

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_PATH = rf"(?:\.{_NAME}|\[-?\d+\])*"
_REF_BODY = (
    rf"(?:(?P<kind>step|input):(?P<name>{_NAME})(?P<path>{_PATH})|item(?::(?P<ipath>{_NAME}{_PATH}|\[-?\d+\]{_PATH}))?)"
)
_WHOLE = re.compile(rf"^{_REF_BODY}\Z")  # \Z, not $: "step:a\n" is not a reference
_TEMPLATE = re.compile(r"\{\{\s*(?P<body>[^{}]*?)\s*\}\}")
_SEGMENT = re.compile(rf"\.(?P<field>{_NAME})|\[(?P<index>-?\d+)\]")
_LOOKS_LIKE_REF = re.compile(r"^(step|input|item)(:|$)")


class Ref(NamedTuple):
    """A parsed reference: `step:parse.items[0]` is Ref("step", "parse", ("items", 0)).

    Named tuples, here and for the nodes below: immutable and hashable like a frozen dataclass, and built
    several times faster (validation builds a few per step).
    """

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
    if "[" not in text:  # the common case, `.field.field`: already matched by _PATH, so a split is exact
        return tuple(text[1:].split(".")) if text else ()
    return tuple(
        m.group("field") if m.group("field") is not None else int(m.group("index")) for m in _SEGMENT.finditer(text)
    )


_REF_PREFIXES = ("step:", "input:", "item")


def _is_name(text: str) -> bool:
    """`text` matches _NAME: ASCII letters, digits, `_` and `-`, not starting with a digit or `-`."""
    return text.isascii() and text[:1] not in ("", "-") and text.replace("-", "_").isidentifier()


def parse_ref(text: str) -> Ref | None:
    """Parse a whole-string reference; None when `text` is not one."""
    if text.startswith("step:"):
        if "[" not in text:  # the usual `step:<id>` or `step:<id>.<field>`, without the regex
            name, dot, field = text[5:].partition(".")
            if "." not in field and _is_name(name) and (not dot or _is_name(field)):
                return Ref("step", name, (field,) if dot else ())
    elif not text.startswith(_REF_PREFIXES):  # most strings: no regex needed
        return None
    return _parse_slow(text)


def _parse_slow(text: str) -> Ref | None:
    """:func:`parse_ref` by the grammar's regular expression alone (the fast path must agree with it)."""
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


class RefNode(NamedTuple):
    ref: Ref


class TemplateNode(NamedTuple):
    parts: tuple[str | Ref, ...]


class DictNode(NamedTuple):
    items: tuple[tuple[str, Any], ...]


class ListNode(NamedTuple):
    items: tuple[Any, ...]


class Literal_(NamedTuple):
    value: Any


Node = RefNode | TemplateNode | DictNode | ListNode | Literal_


def compile_value(value: Any, malformed: list[bool] | None = None, strings: dict[str, Node] | None = None) -> Node:
    """Compile an argument value (any JSON) into resolver nodes.

    When `malformed` is given, ``True`` is appended to it for each string that looks like a reference but
    is not one (the validator then walks the value again to say where). `strings` caches the nodes of
    strings already compiled (the same reference often stands in many steps; nodes are immutable).
    """
    kind = type(value)
    if kind is int or kind is float or kind is bool or value is None:
        return Literal_(value)
    if kind is str and strings is not None:
        return _compile_cached(value, malformed, strings)
    if kind is str or isinstance(value, str):
        return _compile_string(value, malformed)
    if kind is list:
        nodes = [compile_value(v, malformed, strings) for v in value]
        for node in nodes:
            if type(node) is not Literal_:
                return ListNode(tuple(nodes))
        return Literal_(value)
    if kind is dict or isinstance(value, Mapping):
        items = [(k, compile_value(v, malformed, strings)) for k, v in value.items()]
        for _, node in items:
            if type(node) is not Literal_:
                return DictNode(tuple(items))
        return Literal_(value)
    if isinstance(value, list):
        return compile_value(list(value), malformed, strings)
    return Literal_(value)


def _compile_cached(value: str, malformed: list[bool] | None, strings: dict[str, Node]) -> Node:
    node = strings.get(value)
    if node is None:
        found: list[bool] = []
        node = _compile_string(value, found)
        if found:  # a malformed string is reported where it stands, each time: not cached
            if malformed is not None:
                malformed.append(True)
        else:
            strings[value] = node
    return node


def _compile_string(value: str, malformed: list[bool] | None) -> Node:
    ref = parse_ref(value)
    if ref is not None:
        return RefNode(ref)
    if malformed is not None and value.startswith(_REF_PREFIXES) and looks_like_ref(value):
        malformed.append(True)
    if "{{" in value:
        parts = _template_parts(value)
        if malformed is not None and any(
            parse_ref(body) is None and looks_like_ref(body) for body in template_bodies(value)
        ):
            malformed.append(True)
        if any(isinstance(p, Ref) for p in parts):
            return TemplateNode(parts)
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
    return _lookup(ref, steps, inputs, item)


def _lookup(ref: Ref, steps: Mapping[str, Any], inputs: Mapping[str, Any], item: Any) -> Any:
    if ref.kind == "step":
        value = steps[ref.name]
        path = ref.path
        if not path:
            return value
        if len(path) == 1 and type(value) is dict and path[0] in value:  # the common case: `step:x.field`
            return value[path[0]]
        return follow(value, path, origin=f"step:{ref.name}")
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
    return resolve_in(node, env[0], env[1], env[2])


def resolve_in(node: Node, steps: Mapping[str, Any], inputs: Mapping[str, Any], item: Any) -> Any:
    """:func:`resolve` with the environment's three parts as arguments (the executor's hot path)."""
    kind = type(node)
    if kind is Literal_:
        return node.value  # type: ignore[union-attr]
    if kind is RefNode:
        return _lookup(node.ref, steps, inputs, item)  # type: ignore[union-attr]
    if kind is ListNode or kind is DictNode:
        # Children that are literals or references are taken inline: one call less for each.
        out: Any = [] if kind is ListNode else {}
        for entry in node.items:  # type: ignore[union-attr]
            child: Any = entry if kind is ListNode else entry[1]
            child_kind = type(child)
            if child_kind is Literal_:
                value = child.value
            elif child_kind is RefNode:
                value = _lookup(child.ref, steps, inputs, item)
            else:
                value = resolve_in(child, steps, inputs, item)
            if kind is ListNode:
                out.append(value)
            else:
                out[entry[0]] = value
        return out
    return "".join(
        part if isinstance(part, str) else as_text(_lookup(part, steps, inputs, item))
        for part in node.parts  # type: ignore[union-attr]
    )
