"""MCP tools as orchestrator tools: the spec from the server's listing, calls through a shared connection.

A server's tool ``t`` becomes the tool ``<server>.t`` of kind ``mcp``, with the server's input schema,
its output schema when it declares one, and its annotations (``readOnlyHint`` ...) kept as
:class:`~orchestrator.registry.ToolAnnotations`. A call returns the structured result when the server
gives one, else the text it wrote (several text blocks joined by newlines), else its content blocks as
JSON. A result flagged ``isError`` raises a :class:`~orchestrator.errors.ToolError` naming server and tool.

Our own server (``orchestrator mcp serve``) also says, in ``_meta``, which worker mode answered and what
it cost; those are reported into the step as if the tool had run here, so a plan's results are the same
in process and out of process.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.context import Usage, report_count, report_mode, report_usage
from orchestrator.errors import ToolError
from orchestrator.registry import ToolAnnotations, ToolKind, ToolSpec
from orchestrator.run_scope import current_budget, current_scope

if TYPE_CHECKING:
    from orchestrator.budget import Budget
    from orchestrator.mcp_bridge.connection import McpConnection

__all__ = ["META", "McpTool", "annotations_of", "is_wrapped", "output_of", "spec_from_listing"]

META = "orchestrator/"
"""Prefix of the ``_meta`` keys our server adds (kind, wrapped output, modes, usage, counts, retryable)."""


MAX_DESCRIPTION = 2000
"""Characters of a server's tool description kept for the catalog."""

TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
"""MCP's tool names; a server's tool named otherwise is left out."""


class ServerHandle:
    """How the tools of one server reach it: the run's shared connection, or one per call outside a run."""

    def __init__(
        self, name: str, factory: Callable[[], McpConnection], *, key: str | None = None, trusted: bool = False
    ) -> None:
        """Args:
        name: The server's name (in errors and worker modes).
        factory: Makes a new, unstarted connection.
        key: Identifies the server among every source's (the run's connections are kept by it; default: name).
        trusted: The server is our own ``mcp serve``: the worker modes, usage and counts in its results'
            ``_meta`` are reported into the step (another server's ``_meta`` is not believed).
        """
        self.name = name
        self.key = key or name
        self.factory = factory
        self.trusted = trusted

    async def call(self, tool: str, args: Mapping[str, Any], meta: dict[str, Any] | None = None) -> Any:
        scope = current_scope()
        if scope is not None:
            connection = scope.resource(("mcp", self.key), self.factory)
            return await connection.call(tool, args, meta)
        connection = self.factory()
        try:
            return await connection.call(tool, args, meta)
        finally:
            await connection.aclose()


def annotations_of(tool: Any) -> ToolAnnotations:
    """The MCP tool's hints as ToolAnnotations; a hint the server left out takes MCP's default."""
    hints = tool.annotations
    if hints is None:
        return ToolAnnotations()
    values = {
        "read_only": hints.read_only_hint,
        "destructive": hints.destructive_hint,
        "idempotent": hints.idempotent_hint,
        "open_world": hints.open_world_hint,
    }
    return ToolAnnotations(**{k: v for k, v in values.items() if v is not None})


def _unwrapped_schema(schema: dict[str, Any]) -> dict[str, Any]:
    inner = schema.get("properties", {}).get("result")
    if not isinstance(inner, dict):
        return {}
    return {**inner, "$defs": schema["$defs"]} if "$defs" in schema else inner


def is_wrapped(tool: Any) -> bool:
    """Whether the tool's structured output is its value wrapped in ``{"result": ...}``.

    Our server says so in ``_meta``; the SDK's ``MCPServer`` wraps a function's non-object return value
    the same way, under an output schema titled ``<function>Output`` with the one required property
    ``result``. Either way the plan sees the value itself.
    """
    if (tool.meta or {}).get(META + "wrapped"):
        return True
    schema = tool.output_schema or {}
    return (
        set(schema.get("properties") or {}) == {"result"}
        and schema.get("required") == ["result"]
        and str(schema.get("title", "")).endswith("Output")
    )


def spec_from_listing(tool: Any, *, name: str, kind: ToolKind | str = ToolKind.MCP) -> ToolSpec:
    """The ToolSpec of an MCP tool (``mcp.types.Tool``) under the name `name`."""
    output = dict(tool.output_schema or {})
    if is_wrapped(tool):
        output = _unwrapped_schema(output)
    title = tool.title or (tool.annotations.title if tool.annotations is not None else None)
    description = (tool.description or "").strip() or title or tool.name
    if len(description) > MAX_DESCRIPTION:  # the planner reads it: a server must not flood its prompt
        description = description[:MAX_DESCRIPTION] + "..."
    return ToolSpec(
        name=name,
        kind=ToolKind(kind),
        description=description,
        input_schema=dict(tool.input_schema or {"type": "object"}),
        output_schema=output,
        annotations=annotations_of(tool),
    )


def output_of(result: Any, *, wrapped: bool = False) -> Any:
    """A successful ``CallToolResult`` as plain JSON data."""
    if result.structured_content is not None:
        value = result.structured_content
        if wrapped and isinstance(value, dict) and "result" in value:
            return value["result"]
        return value
    blocks = result.content or []
    texts = [block.text for block in blocks if getattr(block, "type", None) == "text"]
    if texts and len(texts) == len(blocks):
        return "\n".join(texts)
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in blocks]


def error_text(result: Any) -> str:
    """What a failed ``CallToolResult`` says (its text blocks), on one line, bounded."""
    texts = [block.text for block in result.content or [] if getattr(block, "type", None) == "text"]
    text = " ".join(" ".join(texts).split()) or "the tool reported an error (no message)"
    return text if len(text) <= 1000 else text[:1000] + "..."


def report_meta(meta: Mapping[str, Any] | None) -> None:
    """Report the worker modes, usage and counts our server sent in a result's ``_meta``."""
    if not meta:
        return
    modes = meta.get(META + "modes")
    if isinstance(modes, list):
        for mode in modes:
            if isinstance(mode, str):
                report_mode(mode)
    usage = meta.get(META + "usage")
    if isinstance(usage, dict):
        try:
            report_usage(Usage.model_validate(usage))
        except ValueError:
            pass
    counts = meta.get(META + "counts")
    if isinstance(counts, dict):
        for key, n in counts.items():
            if isinstance(key, str) and isinstance(n, int) and not isinstance(n, bool):
                report_count(key, n)


def charge_reported(budget: Budget, spent: Any) -> None:
    """Charge `budget` with what our server's call budget recorded (``{"spent_usd", "calls", "stopped"}``)."""
    if not isinstance(spent, dict):
        return
    cost, calls, stopped = spent.get("spent_usd"), spent.get("calls"), spent.get("stopped")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0:
        budget.charge(float(cost), calls=calls if type(calls) is int and calls >= 0 else 0)
    if type(stopped) is int and stopped > 0:
        budget.stopped += stopped


class McpTool:
    """One tool of an MCP server, callable from plans."""

    def __init__(self, spec: ToolSpec, *, server: ServerHandle, remote_name: str, wrapped: bool = False) -> None:
        """Args:
        spec: What the planner and validator see.
        server: Reaches the server.
        remote_name: The tool's name on the server.
        wrapped: The server wraps the output in ``{"result": ...}`` (our server does for non-objects).
        """
        self._spec = spec
        self.server = server
        self.remote_name = remote_name
        self.wrapped = wrapped
        self._validators: dict[str, Any] = {}

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def __repr__(self) -> str:
        return f"McpTool({self._spec.name!r})"

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        # Our own server runs the call under what is left of this run's budget and says what it spent, which is
        # charged here: BUDGET_USD holds the same in process and out of process (another server is not asked).
        budget = current_budget() if self.server.trusted else None
        sent = None if budget is None else {META + "budget": {"limit_usd": budget.remaining_usd}}
        result = await self.server.call(self.remote_name, args, sent)
        meta = result.meta or {}
        if budget is not None:
            charge_reported(budget, meta.get(META + "budget"))
        if result.is_error:
            retryable = bool(meta.get(META + "retryable", False))
            who = f"mcp server {self.server.name!r}, tool {self.remote_name!r}"
            raise ToolError(f"{who}: {error_text(result)}", retryable=retryable)
        if self.server.trusted and META + "modes" in meta:
            report_meta(meta)
        else:
            report_mode(f"mcp:{self.server.name}")
        return output_of(result, wrapped=self.wrapped)

    def check_value(self, arg: str, value: Any) -> str | None:
        """Check a literal argument against the server's input schema for it."""
        schema = self._spec.input_schema
        props = schema.get("properties") or {}
        if arg not in props:
            if schema.get("additionalProperties") is False:
                return f"unknown argument {arg!r} (the tool takes {', '.join(sorted(props)) or 'none'})"
            return None
        validator = self._validators.get(arg)
        if validator is None:
            import jsonschema

            sub = dict(props[arg])
            if "$defs" in schema and "$defs" not in sub:
                sub["$defs"] = schema["$defs"]
            try:
                cls = jsonschema.validators.validator_for(sub)
                cls.check_schema(sub)
                validator = cls(sub)
            except jsonschema.SchemaError:
                return None  # the server's schema is broken; the server will judge the value itself
            self._validators[arg] = validator
        error = next(iter(validator.iter_errors(value)), None)
        if error is None:
            return None
        message = str(error.message)
        return message if len(message) < 300 else message[:300] + "..."


def dumps_compact(value: Any) -> str:
    """JSON text for a text content block (what a host that ignores structured output shows)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
