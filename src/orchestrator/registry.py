"""The tool registry: typed Python functions (and MCP tools, models, code) behind one small interface.

A tool is anything with a :class:`ToolSpec` (name, kind, description, input and output JSON Schemas)
and an ``invoke(args)`` coroutine. :class:`FunctionTool` builds both from a plain function: the input
schema from its parameters' type hints, the output schema from its return annotation, the description
from its docstring (Google-style ``Args:`` lines become field descriptions).

    >>> registry = ToolRegistry()
    >>> @registry.tool(kind="function")
    ... def add_tax(amount: float, rate: float = 0.08) -> float:
    ...     '''Add sales tax to an amount.'''
    ...     return round(amount * (1 + rate), 2)
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any, Protocol, TypeVar, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from orchestrator.context import StepContext, current_step
from orchestrator.errors import ConfigurationError, ToolError, UnknownToolError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class ToolKind(StrEnum):
    """What kind of worker answers a tool: used for routing, concurrency limits and the planner's catalog."""

    FUNCTION = "function"
    MCP = "mcp"
    SMALL_MODEL = "small_model"
    LARGE_MODEL = "large_model"
    CODE = "code"


class ToolSpec(BaseModel):
    """What the planner and the validator know about a tool. This is one entry of `orchestrator tools --json`."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ToolKind
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, description="at most this many calls at once (None: no limit)")


class Tool(Protocol):
    """The interface every tool implements."""

    @property
    def spec(self) -> ToolSpec: ...

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        """Validate `args` against the input schema, run, and return a JSON-compatible value."""
        ...

    def check_value(self, arg: str, value: Any) -> str | None:
        """Check a literal argument value before the run; return an error message or None."""
        ...


_ARGS_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$", re.MULTILINE)
_SECTION_END = re.compile(r"^\s*(Returns|Raises|Yields|Examples?|Notes?):\s*$", re.MULTILINE)
_ARG_LINE = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {param: description})."""
    doc = inspect.cleandoc(doc)
    match = _ARGS_SECTION.search(doc)
    if not match:
        return doc.strip(), {}
    description = doc[: match.start()].strip()
    rest = doc[match.end() :]
    end = _SECTION_END.search(rest)
    section = rest[: end.start()] if end else rest
    params: dict[str, str] = {}
    current: str | None = None
    for line in section.splitlines():
        m = _ARG_LINE.match(line)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current and line.strip():
            params[current] += " " + line.strip()
    return description, params


def _is_any(annotation: Any) -> bool:
    return annotation is Any or annotation is inspect.Signature.empty


class FunctionTool:
    """A typed Python function (sync or async) exposed as a tool."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        kind: ToolKind | str = ToolKind.FUNCTION,
        description: str | None = None,
        concurrency: int | None = None,
    ):
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        name = name or fn.__name__
        doc_description, param_docs = _split_docstring(fn.__doc__ or "")
        try:
            hints = get_type_hints(fn, include_extras=True)
        except NameError as exc:
            raise ConfigurationError(f"tool {name!r}: cannot resolve a type hint ({exc})") from exc
        fields: dict[str, Any] = {}
        self._context_param: str | None = None
        self._accepts_extra = False
        for param in inspect.signature(fn).parameters.values():
            annotation = hints.get(param.name, Any)
            if annotation is StepContext:
                self._context_param = param.name
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                self._accepts_extra = True
                continue
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                raise ConfigurationError(f"tool {name!r}: *{param.name} is not supported; take a list instead")
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name)))
        config = ConfigDict(extra="allow" if self._accepts_extra else "forbid", arbitrary_types_allowed=True)
        self.arg_model: type[BaseModel] = create_model(f"{name}_args", __config__=config, **fields)
        self._param_names = tuple(fields)
        self._no_args = not fields and self._context_param is None and self.is_async
        return_annotation = hints.get("return", Any)
        self._output_adapter: TypeAdapter[Any] | None = (
            None if _is_any(return_annotation) else TypeAdapter(return_annotation)
        )
        self._field_adapters: dict[str, TypeAdapter[Any]] = {}
        output_schema = self._output_adapter.json_schema(mode="serialization") if self._output_adapter else {}
        self._spec = ToolSpec(
            name=name,
            kind=ToolKind(kind),
            description=description or doc_description or name,
            input_schema=self.arg_model.model_json_schema(),
            output_schema=output_schema,
            concurrency=concurrency,
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    @property
    def takes_context(self) -> bool:
        """Whether the function has a StepContext parameter."""
        return self._context_param is not None

    def __repr__(self) -> str:
        return f"FunctionTool({self._spec.name!r}, kind={self._spec.kind.value!r})"

    def check_value(self, arg: str, value: Any) -> str | None:
        field = self.arg_model.model_fields.get(arg)
        if field is None:
            return None
        adapter = self._field_adapters.get(arg)
        if adapter is None:
            adapter = self._field_adapters[arg] = TypeAdapter(field.annotation if field.annotation is not None else Any)
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            return _first_error(exc)
        return None

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        return self.dump(await self.start(args))

    def start(self, args: Mapping[str, Any]) -> Awaitable[Any]:
        """Validate `args` and return the awaitable call (the executor awaits it, then calls `dump`)."""
        if self._no_args and not args:
            result: Awaitable[Any] = self.fn()
            return result
        try:
            validated = self.arg_model.model_validate(args)
        except ValidationError as exc:
            raise ToolError(f"tool {self._spec.name!r}: invalid arguments: {_all_errors(exc)}") from exc
        kwargs = {name: getattr(validated, name) for name in self._param_names}
        if self._accepts_extra and validated.model_extra:
            kwargs.update(validated.model_extra)
        if self._context_param is not None:
            kwargs[self._context_param] = current_step()
        if self.is_async:
            call: Awaitable[Any] = self.fn(**kwargs)
            return call
        # asyncio.to_thread copies the context, so report_mode() works in sync tools too.
        return asyncio.to_thread(self.fn, **kwargs)

    def dump(self, result: Any) -> Any:
        """The tool's return value as plain JSON data."""
        return result if result is None else to_jsonable(result, self._output_adapter)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def to_jsonable(value: Any, adapter: TypeAdapter[Any] | None = None) -> Any:
    """Turn a tool's return value into plain JSON data (dicts, lists, str, numbers, bool, None)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if adapter is not None:
        return adapter.dump_python(value, mode="json")
    return _ANY_ADAPTER.dump_python(value, mode="json")


_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


def _loc(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = _loc(error)
    return f"{loc}: {error['msg']}" if loc else str(error["msg"])


def _all_errors(exc: ValidationError) -> str:
    return "; ".join(f"{_loc(e) or 'args'}: {e['msg']}" for e in exc.errors())


class ToolRegistry:
    """Tools by name. Small and plain: add, get (with 'did you mean'), list, catalog."""

    def __init__(self, tools: Mapping[str, Tool] | None = None):
        self._tools: dict[str, Tool] = dict(tools or {})

    def add(self, tool: Tool, *, replace: bool = False) -> Tool:
        name = tool.spec.name
        if name in self._tools and not replace:
            logger.warning("tool %r is already registered; keeping the first one", name)
            return self._tools[name]
        self._tools[name] = tool
        return tool

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self.suggest(name)) from None

    def suggest(self, name: str) -> list[str]:
        """The registered names closest to `name`, best first."""
        return difflib.get_close_matches(name, list(self._tools), n=3, cutoff=0.5)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def catalog(self) -> list[ToolSpec]:
        """Every tool's spec, sorted by name: exactly what the planner is shown."""
        return [self._tools[name].spec for name in sorted(self._tools)]

    def copy(self) -> ToolRegistry:
        return ToolRegistry(self._tools)

    @overload
    def tool(self, fn: F, /) -> F: ...

    @overload
    def tool(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        kind: ToolKind | str = ToolKind.FUNCTION,
        description: str | None = None,
        concurrency: int | None = None,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        kind: ToolKind | str = ToolKind.FUNCTION,
        description: str | None = None,
        concurrency: int | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function as a tool; the function itself is returned unchanged."""

        def register(func: F) -> F:
            self.add(FunctionTool(func, name=name, kind=kind, description=description, concurrency=concurrency))
            return func

        return register(fn) if fn is not None else register


BUILTINS = ToolRegistry()
"""Tools shipped with orchestrator register here when their module is imported."""

tool = BUILTINS.tool
"""Decorator registering a function as a built-in tool (see :meth:`ToolRegistry.tool`)."""

ENTRY_POINT_GROUP = "orchestrator.tools"


def default_registry(*, plugins: bool = True) -> ToolRegistry:
    """A fresh registry holding the built-in tools and, unless `plugins=False`, entry-point plugins.

    A plugin is a module named in the ``orchestrator.tools`` entry-point group; it exposes
    ``register_tools(registry)``.
    """
    import orchestrator.workers  # noqa: F401  (importing registers the built-in tools)

    registry = BUILTINS.copy()
    from orchestrator.sandbox.tool import sandbox_tools
    from orchestrator.settings import current_settings

    for sandboxed in sandbox_tools(current_settings()):  # the code_exec tool (issue 11)
        registry.add(sandboxed)
    if plugins:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                hook: Callable[[ToolRegistry], None | Awaitable[None]] = ep.load().register_tools
                hook(registry)
            except Exception as exc:  # a broken plugin must not take the CLI down
                logger.warning("tool plugin %r failed to load: %s", ep.name, exc)
    return registry
