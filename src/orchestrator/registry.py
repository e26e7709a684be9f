"""The tool interface: typed Python functions (and MCP tools, models, code) behind one small interface.

The bottom layer under the planner, validator, executor and workers; it knows no tools. A tool is anything
with a :class:`ToolSpec` (name, kind, description, input and output JSON Schemas, :class:`ToolAnnotations`)
and an ``invoke(args)`` coroutine. :class:`FunctionTool` builds both from a plain function: the input
schema from its parameters' type hints, the output schema from its return annotation, the description
from its docstring (Google-style ``Args:`` lines become field descriptions).

- :func:`tool` only *describes* a function: it is returned unchanged, registered nowhere.
  :func:`tools_in` lists the tools a module describes.
- :class:`ToolRegistry` is a plain container: add, get (with "did you mean"), list, catalog.
- A :class:`ToolSource` yields tools (``tools()``, optionally ``async aclose()``): the built-ins, entry-point
  plugins, MCP servers, the code sandbox. :func:`orchestrator.toolbox.default_registry` assembles a
  registry from them.

    >>> registry = ToolRegistry()
    >>> @registry.tool(kind="function", read_only=True, idempotent=True, destructive=False, open_world=False)
    ... def add_tax(amount: float, rate: float = 0.08) -> float:
    ...     '''Add sales tax to an amount.'''
    ...     return round(amount * (1 + rate), 2)
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType, NoneType, UnionType
from typing import (
    Any,
    Literal,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    overload,
    runtime_checkable,
)

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from typing_extensions import is_typeddict

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


class ToolAnnotations(BaseModel):
    """Hints about what a tool does, with MCP's meaning and defaults (a tool that says nothing: assume the worst).

    Hints, not guarantees: a tool from an untrusted source (an MCP server, a plugin) may state them wrongly.
    """

    model_config = ConfigDict(frozen=True)

    read_only: bool = Field(default=False, description="changes nothing outside itself (files, services, money)")
    destructive: bool = Field(default=True, description="may delete or overwrite (meaningful when not read-only)")
    idempotent: bool = Field(default=False, description="a repeated call with the same arguments has no more effect")
    open_world: bool = Field(default=True, description="reaches outside the process (network, services, models)")


class ToolSpec(BaseModel):
    """What the planner and the validator know about a tool. This is one entry of `orchestrator tools --json`."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ToolKind
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, description="at most this many calls at once (None: no limit)")
    annotations: ToolAnnotations = Field(default_factory=ToolAnnotations)
    version: str = Field(default="1", description="changes when the tool's results change (keys cached results)")


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
        annotations: ToolAnnotations | None = None,
        version: str = "1",
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
        output_fields = _plain_fields(return_annotation)
        self._output_items = tuple(output_fields.items()) if output_fields is not None else None
        self._field_adapters: dict[str, TypeAdapter[Any]] = {}
        self._direct: dict[frozenset[str], Callable[[dict[str, Any]], Awaitable[Any]] | None] = {}
        output_schema = self._output_adapter.json_schema(mode="serialization") if self._output_adapter else {}
        self._spec = ToolSpec(
            name=name,
            kind=ToolKind(kind),
            description=description or doc_description or name,
            input_schema=self.arg_model.model_json_schema(),
            output_schema=output_schema,
            concurrency=concurrency,
            annotations=annotations or ToolAnnotations(),
            version=version,
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
        import asyncio  # here, not at the top: listing and validating tools never needs it

        # asyncio.to_thread copies the context, so report_mode() works in sync tools too.
        return asyncio.to_thread(self.fn, **kwargs)

    def plain_arg(self, name: str) -> bool:
        """Whether argument `name` has a plain type, which its JSON Schema describes completely (no
        constraints or validators that only Pydantic knows)."""
        return self.literal_check(name) is not None

    def literal_check(self, name: str) -> Callable[[Any], bool] | None:
        """For a plain-typed argument, a predicate that says exactly what its JSON Schema says about a
        JSON value (exact types: a boolean is not an integer, text is not a number); None otherwise."""
        info = self.arg_model.model_fields.get(name)
        guard = None if info is None or info.metadata else _guard(info.annotation)
        if guard is None:
            return None
        return lambda value: guard(value) is not _NO

    def exact_type(self, name: str) -> type | None:
        """For an argument of type str, int or bool without constraints: that type (a value of exactly that
        type is valid, and :meth:`literal_check` says no more than that); None otherwise."""
        info = self.arg_model.model_fields.get(name)
        if info is None or info.metadata or info.annotation not in _EXACT:
            return None
        kind: type = info.annotation
        return kind

    def direct_call(self, names: frozenset[str]) -> Callable[[dict[str, Any]], Awaitable[Any]] | None:
        """A call of this tool with arguments `names` that skips Pydantic, or None when that is not safe.

        The plan validator asks for it (once per step) after it has checked the step's literal arguments
        against the tool's JSON Schema and its references' types. At run time each argument still passes
        a guard: an exact type check, plus the copy or conversion Pydantic would make (lists and dicts are
        copied, an int becomes a float for a float parameter). Only plain types have guards (str, int,
        float, bool, None, Any, optionals, lists and dicts of those, literal strings); a value a guard does
        not accept goes through :meth:`start`, so the result is always what full validation gives.
        """
        if names in self._direct:
            return self._direct[names]
        call = self._direct[names] = self._make_direct(names)
        return call

    def direct_guards(self, names: frozenset[str]) -> dict[str, Callable[[Any], Any]] | None:
        """The guards :meth:`direct_call` applies to arguments `names` (None: no direct call is safe).

        Each returns the value Pydantic would pass to the function, or :data:`REFUSED` for a value it does
        not vouch for (the call must then go through :meth:`start`). The function is then called as
        ``tool.fn(**guarded)``.
        """
        if not self.is_async or self._context_param is not None or self._accepts_extra:
            return None
        guards: dict[str, Callable[[Any], Any]] = {}
        for name, info in self.arg_model.model_fields.items():
            if name in names:
                guard = None if info.metadata else _guard(info.annotation)
                if guard is None:
                    return None
                guards[name] = guard
            elif info.is_required() or type(info.default) not in _IMMUTABLE:
                return None  # Pydantic would copy a mutable default; the function would share its own
        if not names <= guards.keys():
            return None
        return guards

    def _make_direct(self, names: frozenset[str]) -> Callable[[dict[str, Any]], Awaitable[Any]] | None:
        guards = self.direct_guards(names)
        if guards is None:
            return None
        fn, start = self.fn, self.start

        def call(args: dict[str, Any]) -> Awaitable[Any]:
            kwargs: dict[str, Any] = {}
            for name, value in args.items():
                guard = guards.get(name)
                if guard is None:
                    return start(args)
                checked = guard(value)
                if checked is _NO:
                    return start(args)
                kwargs[name] = checked
            result: Awaitable[Any] = fn(**kwargs)
            return result

        return call

    def dump(self, result: Any) -> Any:
        """The tool's return value as plain JSON data."""
        fields = self._output_items
        if fields is not None and type(result) is dict and len(result) == len(fields):
            # A TypedDict of plain fields, returned with every field (so no other key) of its exact type: what
            # Pydantic's serializer gives is a copy (in the dict's own order), made here without it.
            for key, kind in fields:
                if type(result.get(key)) is not kind:  # (None, for a missing field, is not a plain type)
                    break
            else:
                return result.copy()
        return result if result is None else to_jsonable(result, self._output_adapter)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


_NO: Any = object()  # a guard's "not this type"
REFUSED: Any = _NO
"""What a guard of :meth:`FunctionTool.direct_guards` returns for a value it does not vouch for."""
_IMMUTABLE = frozenset({NoneType, str, int, float, bool, tuple, frozenset})
_EXACT = {str: str, int: int, bool: bool}


def _guard(annotation: Any) -> Callable[[Any], Any] | None:
    """A run-time check standing in for Pydantic's validation of `annotation`, for plain types only.

    It returns the value Pydantic would give for a value of the exact type (copying lists and dicts,
    widening int to float), or ``_NO`` for anything else; None when the annotation has no guard.
    """
    if annotation is Any:
        return _same
    if annotation in _EXACT:
        kind = _EXACT[annotation]
        return lambda v: v if type(v) is kind else _NO
    if annotation is float:
        return _as_float
    if annotation is NoneType:
        return lambda v: v if v is None else _NO
    if annotation is list:
        return lambda v: list(v) if type(v) is list else _NO
    if annotation is dict:
        return lambda v: dict(v) if type(v) is dict else _NO
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType) and len(args) == 2 and NoneType in args:
        inner = _guard(args[0] if args[1] is NoneType else args[1])
        if inner is None:
            return None
        return lambda v: v if v is None else inner(v)
    if origin is Literal and args and all(type(a) is str for a in args):
        allowed = frozenset(args)
        return lambda v: v if type(v) is str and v in allowed else _NO
    if origin is list and len(args) == 1 and (args[0] in _EXACT or args[0] is Any):
        if args[0] is Any:
            return lambda v: list(v) if type(v) is list else _NO
        return _LIST_GUARDS[_EXACT[args[0]]]
    if origin is dict and len(args) == 2 and args[0] is str and (args[1] in _EXACT or args[1] is Any):
        value_kind = _EXACT.get(args[1])
        return lambda v: (
            dict(v)
            if type(v) is dict
            and all(type(k) is str for k in v)
            and (value_kind is None or all(type(e) is value_kind for e in v.values()))
            else _NO
        )
    return None


_PLAIN_FIELD_TYPES = frozenset({str, int, bool})


def _plain_fields(annotation: Any) -> dict[str, type] | None:
    """The fields of a TypedDict whose fields are all required and of type str, int or bool (their JSON form
    is the value itself); None for any other return type."""
    if not is_typeddict(annotation):
        return None
    try:
        hints = get_type_hints(annotation, include_extras=True)  # Annotated (a serializer?): not plain
    except Exception:  # an unresolvable hint: Pydantic dumps it
        return None
    if set(hints) != set(getattr(annotation, "__required_keys__", ())):
        return None
    if not all(kind in _PLAIN_FIELD_TYPES for kind in hints.values()):
        return None
    return dict(hints)


def _list_of(kind: type) -> Callable[[Any], Any]:
    """The guard of ``list[kind]``: a copy of a list whose every element is exactly a `kind` (a plain loop:
    for the short lists arguments usually are, several times faster than a set of the element types)."""

    def guard(value: Any) -> Any:
        if type(value) is not list:
            return _NO
        for element in value:
            if type(element) is not kind:
                return _NO
        return value.copy()

    return guard


_LIST_GUARDS: dict[type, Callable[[Any], Any]] = {kind: _list_of(kind) for kind in (str, int, bool)}


def list_guard_type(guard: Callable[[Any], Any]) -> type | None:
    """For the guard of ``list[str]``, ``list[int]`` or ``list[bool]``: that element type (a fresh list whose
    elements are all exactly of it is what the guard passes, as a copy); None for any other guard."""
    for kind, known in _LIST_GUARDS.items():
        if known is guard:
            return kind
    return None


def _same(value: Any) -> Any:
    return value


def _as_float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    return float(value) if kind is int and -(2**63) <= value <= 2**64 else _NO


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


@dataclass(frozen=True)
class ToolOptions:
    """How :func:`tool` described a function: the :class:`FunctionTool` keywords, kept until the tool is built."""

    name: str | None = None
    kind: ToolKind = ToolKind.FUNCTION
    description: str | None = None
    concurrency: int | None = None
    annotations: ToolAnnotations = field(default_factory=lambda: ToolAnnotations())
    version: str = "1"

    def build(self, fn: Callable[..., Any]) -> FunctionTool:
        """The tool for `fn`, described by these options."""
        return FunctionTool(
            fn,
            name=self.name,
            kind=self.kind,
            description=self.description,
            concurrency=self.concurrency,
            annotations=self.annotations,
            version=self.version,
        )


_OPTIONS_ATTR = "__orchestrator_tool__"
_BUILT_ATTR = "__orchestrator_function_tool__"


def _options(
    name: str | None,
    kind: ToolKind | str,
    description: str | None,
    concurrency: int | None,
    hints: Mapping[str, bool],
    version: str = "1",
) -> ToolOptions:
    try:
        tool_kind = ToolKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ToolKind)
        raise ConfigurationError(f"tool {name!r}: unknown kind {kind!r} (known: {known})") from None
    return ToolOptions(
        name=name,
        kind=tool_kind,
        description=description,
        concurrency=concurrency,
        annotations=ToolAnnotations(**hints),
        version=version,
    )


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    kind: ToolKind | str = ToolKind.FUNCTION,
    description: str | None = None,
    concurrency: int | None = None,
    read_only: bool = False,
    destructive: bool = True,
    idempotent: bool = False,
    open_world: bool = True,
    version: str = "1",
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    kind: ToolKind | str = ToolKind.FUNCTION,
    description: str | None = None,
    concurrency: int | None = None,
    read_only: bool = False,
    destructive: bool = True,
    idempotent: bool = False,
    open_world: bool = True,
    version: str = "1",
) -> F | Callable[[F], F]:
    """Describe a function as a tool. The function is returned unchanged and registered nowhere.

    A tool source (the built-ins: :func:`tools_in` their modules) turns described functions into tools;
    :func:`function_tool` builds one. The keywords are :class:`FunctionTool`'s and :class:`ToolAnnotations`'
    (MCP's hints: ``read_only``, ``destructive``, ``idempotent``, ``open_world``, with MCP's defaults).
    ``version`` changes when the tool's results change: the run store keys the results it reuses by it.
    """
    hints = {"read_only": read_only, "destructive": destructive, "idempotent": idempotent, "open_world": open_world}
    options = _options(name, kind, description, concurrency, hints, version)

    def describe(func: F) -> F:
        setattr(func, _OPTIONS_ATTR, options)
        return func

    return describe(fn) if fn is not None else describe


def is_tool(obj: object) -> bool:
    """Whether `obj` is a function described by :func:`tool`."""
    return callable(obj) and isinstance(getattr(obj, _OPTIONS_ATTR, None), ToolOptions)


def function_tool(fn: Callable[..., Any]) -> FunctionTool:
    """The tool a function described by :func:`tool` stands for (built on first use, then shared).

    Raises:
        ConfigurationError: `fn` was not described by :func:`tool`.
    """
    built = getattr(fn, _BUILT_ATTR, None)
    if isinstance(built, FunctionTool) and built.fn is fn:
        return built
    options = getattr(fn, _OPTIONS_ATTR, None)
    if not isinstance(options, ToolOptions):
        raise ConfigurationError(f"{getattr(fn, '__qualname__', fn)!r} is not described by @tool")
    built = options.build(fn)
    setattr(fn, _BUILT_ATTR, built)
    return built


def tools_in(module: ModuleType) -> list[FunctionTool]:
    """The tools a module defines with :func:`tool`, in the order they are defined (imports are left out)."""
    return [function_tool(fn) for _, fn in described_in(module)]


class DeferredTool:
    """A tool known by its name now and built on first use: a described function's schemas take time to build,
    and a command that validates one plan needs only the tools it names.

    A :class:`ToolRegistry` builds it when the tool is first got and keeps the built tool. A spec given up front
    (known from a cache, say) is what listing the catalog shows, without building.
    """

    def __init__(self, name: str, build: Callable[[], Tool], *, spec: ToolSpec | None = None) -> None:
        self.name = name
        self._build = build
        self._tool: Tool | None = None
        self.known_spec = spec

    def build(self) -> Tool:
        """The tool (built once)."""
        if self._tool is None:
            self._tool = self._build()
        return self._tool

    @property
    def spec(self) -> ToolSpec:
        return self.known_spec if self.known_spec is not None else self.build().spec

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        return await self.build().invoke(args)

    def check_value(self, arg: str, value: Any) -> str | None:
        return self.build().check_value(arg, value)

    def __repr__(self) -> str:
        return f"DeferredTool({self.name!r})"


def deferred_tools_in(module: ModuleType) -> list[DeferredTool]:
    """:func:`tools_in`, each tool built only when first used."""
    return [DeferredTool(tool_name(obj), _builder(obj)) for _, obj in described_in(module)]


def described_in(module: ModuleType) -> list[tuple[str, Callable[..., Any]]]:
    """(attribute name, function) of each function `module` defines and describes with :func:`tool`, in order."""
    return [
        (attr, obj)
        for attr, obj in vars(module).items()
        if is_tool(obj) and getattr(obj, "__module__", None) == module.__name__
    ]


def tool_name(fn: Callable[..., Any]) -> str:
    """The name of the tool a described function stands for, without building it."""
    options = getattr(fn, _OPTIONS_ATTR, None)
    return (options.name if isinstance(options, ToolOptions) else None) or fn.__name__


def _builder(fn: Callable[..., Any]) -> Callable[[], Tool]:
    return lambda: function_tool(fn)


@runtime_checkable
class ToolSource(Protocol):
    """Where tools come from: the built-ins, entry-point plugins, an MCP server, the code sandbox.

    A source may also have an ``async aclose()``; :meth:`ToolRegistry.aclose` calls it (to stop a server, say).
    """

    def tools(self) -> Iterable[Tool]:
        """The tools this source provides (called once, when a registry is assembled)."""
        ...


class ToolRegistry:
    """Tools by name. A plain container (add, get with 'did you mean', list, catalog) that knows no tools itself."""

    def __init__(self, tools: Mapping[str, Tool] | None = None):
        self._tools: dict[str, Tool] = dict(tools or {})
        self._sources: list[ToolSource] = []

    @classmethod
    def from_sources(cls, sources: Iterable[ToolSource]) -> ToolRegistry:
        """A registry with every tool of `sources`, in order (on a name clash the earlier source's tool stays)."""
        registry = cls()
        for source in sources:
            registry.add_source(source)
        return registry

    def add_source(self, source: ToolSource) -> None:
        """Add every tool of `source`, and keep the source so that :meth:`aclose` closes it."""
        for item in source.tools():
            self.add(item)
        self._sources.append(source)

    @property
    def sources(self) -> tuple[ToolSource, ...]:
        """The sources added with :meth:`add_source`, in order."""
        return tuple(self._sources)

    async def aclose(self) -> None:
        """Close the sources that hold resources (servers, sandboxes): each one's ``aclose()``, last added first."""
        sources, self._sources = self._sources, []
        for source in reversed(sources):
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def add(self, tool: Tool, *, replace: bool = False) -> Tool:
        name = tool.name if isinstance(tool, DeferredTool) else tool.spec.name
        if name in self._tools and not replace:
            logger.warning("tool %r is already registered; keeping the first one", name)
            return self._tools[name]
        self._tools[name] = tool
        return tool

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool:
        try:
            found = self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self.suggest(name)) from None
        if isinstance(found, DeferredTool):
            found = self._tools[name] = found.build()
        return found

    def suggest(self, name: str) -> list[str]:
        """The registered names closest to `name`, best first."""
        return difflib.get_close_matches(name, list(self._tools), n=3, cutoff=0.5)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter([self.get(name) for name in list(self._tools)])

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def catalog(self) -> list[ToolSpec]:
        """Every tool's spec, sorted by name: exactly what the planner is shown. A deferred tool whose spec is
        known is listed without being built."""
        return [self._spec(name) for name in sorted(self._tools)]

    def _spec(self, name: str) -> ToolSpec:
        found = self._tools[name]
        if isinstance(found, DeferredTool) and found.known_spec is not None:
            return found.known_spec
        return self.get(name).spec

    def copy(self) -> ToolRegistry:
        """The same tools in a new registry (the sources stay with this one, which closes them)."""
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
        read_only: bool = False,
        destructive: bool = True,
        idempotent: bool = False,
        open_world: bool = True,
        version: str = "1",
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
        read_only: bool = False,
        destructive: bool = True,
        idempotent: bool = False,
        open_world: bool = True,
        version: str = "1",
    ) -> F | Callable[[F], F]:
        """Add a function to this registry as a tool (see :func:`tool`); the function is returned unchanged."""
        hints = {"read_only": read_only, "destructive": destructive, "idempotent": idempotent, "open_world": open_world}
        options = _options(name, kind, description, concurrency, hints, version)

        def register(func: F) -> F:
            self.add(options.build(func))
            return func

        return register(fn) if fn is not None else register
