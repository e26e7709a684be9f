"""The fast path of validation: a plan of the usual shape, checked and compiled into a flat form in one pass.

:func:`compile_fast` reads the plan data straight into a :class:`FastPlan` (lists indexed by step number, no
Pydantic model and no node tree per step) for the shape users and planners write most: steps with ``id``,
``tool``, ``args``, ``depends_on`` and ``description`` only, calling function tools whose arguments are
literal scalars, lists of them, ``step:`` references or lists of references. Every check of the full
validator (:func:`~orchestrator.plan.validate.check_plan`) that can concern such a plan is made here too:
hostile values, ids, unknown tools and arguments, required arguments, each literal against the tool's
schema (the same checks, built once per tool and argument), each reference's target, path and type
(worked out once per tool, argument and target path), cycles (one Kahn pass that also gives the order).

It never reports a problem: anything it does not accept, valid or not (a ``for_each``, a retry, a timeout,
``on_error``, an ``input:`` reference, a template, a nested object, an MCP tool, an error of any kind),
gives None, and the caller takes the full path, which then says exactly what it always said. So it only
ever accepts plans the full validator accepts (``tests/plan/test_fast_plan.py`` holds the two together).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from orchestrator.plan import schemas
from orchestrator.plan.arguments import validator_for
from orchestrator.plan.limits import DEFAULT_LIMITS, Limits
from orchestrator.plan.model import InputSpec, Plan
from orchestrator.plan.refs import Node, _field_path, _is_name, compile_value, iter_refs, parse_ref
from orchestrator.plan.source import INT_MAX, INT_MIN, check_values
from orchestrator.registry import FunctionTool, Tool, ToolRegistry

_STEP_KEYS = frozenset({"id", "tool", "args", "depends_on", "description"})
_PLAN_KEYS = frozenset({"goal", "inputs", "steps", "output"})
_REF_LIKE = ("step", "input", "item")  # a literal starting so may be a malformed reference: the full path says
_INF = float("inf")

READY, LITERAL, REF, REFS, FIELDS = 0, 1, 2, 3, 4
"""How an argument is given: a literal the tool's guard passes as it is (a str, int or bool argument given
exactly that), another literal value, one step reference, a list of them, a list of references to one
field of several steps (``["step:a.value", "step:b.value"]``, the usual list)."""

StepRef = tuple[int, tuple[Any, ...]]
"""A reference as the fast path runs it: the referenced step's number, and the path into its output."""
ArgSpec = tuple[str, int, Any]
"""(argument name, READY or LITERAL / REF / REFS / FIELDS: the value / a StepRef / StepRefs / (step numbers, field))."""


class FastTool:
    """What running the steps that call one tool with the same argument names needs, shared by them."""

    __slots__ = ("dump", "fn", "guards", "kind", "name", "start")

    def __init__(self, tool: FunctionTool, names: tuple[str, ...], kind: str):
        self.name = tool.spec.name
        self.kind = kind
        # The same call the executor makes for such a step (FunctionTool.direct_call): each argument through
        # an exact type guard (in the order of `names`, the steps' own), `fn` called with what they give;
        # a value a guard refuses sends the call through Pydantic (`start`), as do tools without guards.
        guards = tool.direct_guards(frozenset(names))
        self.guards = tuple(guards[name] for name in names) if guards is not None else None
        self.fn: Callable[..., Any] = tool.fn
        self.start: Callable[[dict[str, Any]], Any] = tool.start
        self.dump: Callable[[Any], Any] = tool.dump


class FastPlan:
    """A validated plan in flat form: step number -> id, tool, arguments, dependents."""

    __slots__ = ("data", "dependents", "goal", "ids", "inputs", "output", "specs", "tools", "waits")

    def __init__(
        self,
        data: Mapping[str, Any],
        goal: str,
        inputs: Mapping[str, InputSpec],
        output: Node,
        ids: list[str],
        tools: list[FastTool],
        specs: list[tuple[ArgSpec, ...]],
        waits: list[int],
        dependents: list[tuple[int, ...]],
    ):
        self.data = data
        self.goal = goal
        self.inputs = inputs
        self.output = output
        self.ids = ids
        self.tools = tools
        self.specs = specs
        self.waits = waits  # how many steps each step waits for
        self.dependents = dependents

    def __len__(self) -> int:
        return len(self.ids)


class _Arg:
    """What checking one argument of one tool needs (worked out once per plan)."""

    __slots__ = (
        "checked", "element_fits", "exact", "field_fits", "fits", "items", "items_types", "name", "quick", "types",
        "validator",
    )  # fmt: skip

    def __init__(self, tool: FunctionTool, name: str, schema: schemas.Schema, root: schemas.Schema):
        self.name = name
        self.types = schemas.types_of(schema, root)
        items = schemas.deref(schema, root).get("items")
        self.items: schemas.Schema | None = items if isinstance(items, Mapping) else None
        self.items_types = schemas.types_of(self.items, root) if self.items is not None else None
        self.quick = tool.literal_check(name)
        self.exact = tool.exact_type(name)  # int, str or bool: a literal of exactly that type is valid
        self.validator: Any = None
        self.checked = False  # the validator was looked up
        # (target tool, path) -> whether a reference to it fits: as the whole value, as a list's element
        self.fits: dict[tuple[str, tuple[Any, ...]], bool] = {}
        self.element_fits: dict[tuple[str, tuple[Any, ...]], bool] = {}
        self.field_fits: dict[tuple[str], dict[str, bool]] = {}  # (field,) -> target tool -> fits, as an element

    def literal_ok(self, tool: FunctionTool, value: Any) -> bool:
        """Whether the full validator accepts `value` for this argument (the same checks, in the same order)."""
        if self.quick is not None:
            return self.quick(value)
        if not self.checked:
            self.validator, self.checked = validator_for(tool, self.name), True
        if self.validator is not None:
            try:
                if not self.validator.is_valid(value):
                    return False
            except Exception:  # not JSON data
                return False
        return tool.check_value(self.name, value) is None


class _ToolInfo:
    __slots__ = ("args", "fast", "kind", "name", "required", "root", "tool")

    def __init__(self, tool: FunctionTool):
        self.tool = tool
        self.name = tool.spec.name
        self.kind: str = tool.spec.kind.value
        schema = tool.spec.input_schema
        self.root = schema
        props = schema.get("properties", {}) or {}
        self.args = {name: _Arg(tool, name, sub, schema) for name, sub in props.items() if isinstance(sub, Mapping)}
        self.required = frozenset(schema.get("required", ()) or ())
        self.fast: dict[tuple[str, ...], FastTool] = {}

    def for_names(self, names: Iterable[str]) -> FastTool:
        """The shared run-time part of the steps calling this tool with these argument names."""
        key = tuple(names)
        found = self.fast.get(key)
        if found is None:
            found = self.fast[key] = FastTool(self.tool, key, self.kind)
        return found


class _Unsupported(Exception):
    """The plan is not of the shape the fast path takes (or it is invalid): the full path decides."""


def compile_fast(
    data: Any,
    registry: ToolRegistry,
    *,
    limits: Limits = DEFAULT_LIMITS,
    accept: Callable[[Tool], bool] | None = None,
) -> FastPlan | None:
    """The plan in flat form if it is of the usual shape and valid; None sends it to the full validator.

    Args:
        data: the plan as parsed JSON.
        registry: the tools it may call.
        limits: the size limits (plans with a bound on model use are left to the full path).
        accept: which tools the caller can run on its fast path (None: every function tool).
    """
    bounded = (limits.max_model_steps, limits.max_model_calls, limits.max_for_each, limits.max_for_each_total)
    if type(data) is not dict or any(bound is not None for bound in bounded):
        return None  # a model-written plan's run-time bounds are counted by the general scheduler
    paused = gc.isenabled()  # as in check_plan: many long-lived objects, no cycles
    if paused:
        gc.disable()
    try:
        return _Compiler(registry, limits, accept).plan(data)
    except _Unsupported:
        return None
    finally:
        if paused:
            gc.enable()


_Target = tuple[int, tuple[Any, ...], tuple[str, tuple[Any, ...]]]
"""A parsed step reference: (the step's number, the path, (the step's tool, the path): the key of its fit)."""


class _Compiler:
    def __init__(self, registry: ToolRegistry, limits: Limits, accept: Callable[[Tool], bool] | None):
        self.registry = registry
        self.limits = limits
        self.accept = accept
        self.tools: dict[str, _ToolInfo] = {}
        self.refs: dict[str, _Target] = {}  # reference text -> what it points at (the same text recurs)
        self.paths: dict[str, tuple[str] | None] = {}
        self.index: dict[str, int] = {}
        self.step_tools: list[_ToolInfo] = []

    def plan(self, data: dict[str, Any]) -> FastPlan:
        raw_steps = data.get("steps")
        limits = self.limits
        if not data.keys() <= _PLAN_KEYS or type(raw_steps) is not list or not raw_steps:
            raise _Unsupported
        if len(raw_steps) > limits.max_steps or limits.max_depth < 6:  # steps' values stand 5 levels deep
            raise _Unsupported
        header = {k: v for k, v in data.items() if k != "steps"}
        if check_values(header, limits):
            raise _Unsupported
        head = self.head(header)
        ids = self.read_ids(raw_steps)
        specs, tools, deps = self.steps(raw_steps)
        output = compile_value(data.get("output"))
        for ref, _ in iter_refs(output):
            if ref.kind != "step" or ref.name not in self.index:
                raise _Unsupported
        waits, dependents = _order(deps)
        return FastPlan(data, head.goal, head.inputs, output, ids, tools, specs, waits, dependents)

    @staticmethod
    def head(header: dict[str, Any]) -> Plan:
        """The plan's fields besides its steps, through the format's model (once per plan)."""
        try:
            return Plan.model_validate({**header, "steps": [{"id": "_", "tool": "_"}]})
        except ValidationError:
            raise _Unsupported from None

    def read_ids(self, raw_steps: list[Any]) -> list[str]:
        """Every step's id and tool (first, so that references may point forward)."""
        index, tools, known = self.index, self.step_tools, self.tools
        ids: list[str] = []
        for number, raw in enumerate(raw_steps):
            if type(raw) is not dict or not raw.keys() <= _STEP_KEYS:
                raise _Unsupported
            sid, name = raw.get("id"), raw.get("tool")
            # The id pattern (model.STEP_ID_PATTERN), as refs._is_name checks it, inline; and unique.
            if (
                type(sid) is not str
                or len(sid) > 64
                or not sid.isascii()
                or sid[:1] in ("", "-")
                or not sid.replace("-", "_").isidentifier()
                or sid in index
                or type(name) is not str
            ):
                raise _Unsupported
            index[sid] = number
            ids.append(sid)
            info = known.get(name)
            tools.append(info if info is not None else self.tool(name))
        return ids

    def tool(self, name: str) -> _ToolInfo:
        tool = self.registry.get(name) if name in self.registry else None
        if type(tool) is not FunctionTool or tool.takes_context or (self.accept is not None and not self.accept(tool)):
            raise _Unsupported
        info = self.tools[name] = _ToolInfo(tool)
        return info

    def steps(self, raw_steps: list[Any]) -> tuple[list[tuple[ArgSpec, ...]], list[FastTool], list[tuple[int, ...]]]:
        """Every step's arguments in flat form, its tool's run-time part, the numbers of the steps it waits for.

        The usual arguments (an integer or boolean literal, a list of step references) are checked inline:
        this loop is most of validation's time.
        """
        specs: list[tuple[ArgSpec, ...]] = []
        tools: list[FastTool] = []
        waits: list[tuple[int, ...]] = []
        index, limits = self.index, self.limits
        for number, raw in enumerate(raw_steps):
            info = self.step_tools[number]
            args = raw.get("args", _EMPTY)
            deps_raw = raw.get("depends_on", ())
            description = raw.get("description")
            if type(args) is not dict or type(deps_raw) not in (list, tuple) or not args.keys() >= info.required:
                raise _Unsupported
            if description is not None and (type(description) is not str or not _text_ok(description, limits)):
                raise _Unsupported
            deps: list[int] = []
            spec: list[ArgSpec] = []
            known = info.args
            for name, value in args.items():
                arg = known.get(name)
                if arg is None:
                    raise _Unsupported
                kind = type(value)
                if kind is arg.exact and kind is not str:  # an int or a boolean
                    if kind is int and not INT_MIN <= value <= INT_MAX:
                        raise _Unsupported
                    spec.append((name, READY, value))
                    continue
                if kind is not list or not value or type(value[0]) is not str or not value[0].startswith("step:"):
                    spec.append(self.arg(number, info, arg, value, deps))
                    continue
                fields = self.field_list(number, arg, value)  # the usual list of references, else any
                if fields is not None:
                    deps.extend(fields[0])
                    spec.append((name, FIELDS, fields))
                else:
                    spec.append(self.ref_list(number, name, arg, value, deps))
            for dep in deps_raw:
                found_dep = index.get(dep) if type(dep) is str else None
                if found_dep is None or found_dep == number:
                    raise _Unsupported
                deps.append(found_dep)
            specs.append(tuple(spec))
            tools.append(info.for_names(args))
            # Not deduplicated: a step named twice is waited for twice and counts its dependent down twice.
            waits.append(tuple(deps))
        return specs, tools, waits

    def ref_list(self, number: int, name: str, arg: _Arg, value: list[Any], deps: list[int]) -> ArgSpec:
        """A list of step references: each one's target, path and type, as the full path checks them."""
        refs, fits = self.refs, arg.element_fits
        targets: list[int] = []
        first = None
        uniform = True
        for element in value:
            if type(element) is not str:
                raise _Unsupported
            found = refs.get(element) or self.target(element)
            if found is None:  # a literal among references: the full path
                raise _Unsupported
            target, path, key = found
            ok = fits.get(key)
            if ok is None:
                ok = fits[key] = _fits(arg.items_types, self.step_tools[target], path)
            if not ok or target == number:
                raise _Unsupported
            targets.append(target)
            if path is not first:
                if first is None:
                    first = path
                else:
                    uniform = False
        deps.extend(targets)
        if uniform and first is not None and len(first) == 1:  # one field of each step: the usual list
            return (name, FIELDS, (tuple(targets), first[0]))
        paths = [refs.get(element) or self.target(element) for element in value]
        return (name, REFS, tuple((p[0], p[1]) for p in paths if p is not None))

    def field_list(self, number: int, arg: _Arg, value: list[Any]) -> tuple[tuple[int, ...], str] | None:
        """The usual list, ``["step:<id>.<field>", ...]`` for one field, read without parsing each reference:
        (the steps' numbers, the field); None for any other list (then read one reference at a time).

        An element that is ``step:`` + a known id + ``.`` + the field is the reference parse_ref reads.
        """
        _, dot, field = value[0][5:].partition(".")
        path = self.path(field) if dot else None
        if path is None:
            return None
        if len(field) + 70 > self.limits.max_string:  # "step:" + an id (64 at most) + "." + field
            return None  # near the string length limit: the general reading checks each element
        suffix = "." + field
        cut = -len(suffix)
        index, step_tools = self.index, self.step_tools
        fits = arg.field_fits.get(path)
        if fits is None:
            fits = arg.field_fits[path] = {}
        targets: list[int] = []
        for element in value:
            if type(element) is not str or not element.endswith(suffix) or not element.startswith("step:"):
                return None
            target = index.get(element[5:cut])
            if target is None:
                return None
            tool = step_tools[target]
            ok = fits.get(tool.name)
            if ok is None:
                ok = fits[tool.name] = _fits(arg.items_types, tool, path)
            if not ok or target == number:
                raise _Unsupported
            targets.append(target)
        return tuple(targets), field

    def arg(self, number: int, info: _ToolInfo, arg: _Arg, value: Any, deps: list[int]) -> ArgSpec:
        kind = type(value)
        if kind is str:
            found = self.target(value)
            if found is None:
                if not _text_ok(value, self.limits) or not arg.literal_ok(info.tool, value):
                    raise _Unsupported
                return (arg.name, READY if arg.exact is str else LITERAL, value)
            target, path, key = found
            ok = arg.fits.get(key)
            if ok is None:
                ok = arg.fits[key] = _fits(arg.types, self.step_tools[target], path)
            if not ok or target == number:
                raise _Unsupported
            deps.append(target)
            return (arg.name, REF, (target, path))
        if kind is list:
            for element in value:
                if not _scalar_ok(element, self.limits) or (type(element) is str and self.target(element) is not None):
                    raise _Unsupported
        elif not _scalar_ok(value, self.limits):
            raise _Unsupported
        if not arg.literal_ok(info.tool, value):
            raise _Unsupported
        return (arg.name, LITERAL, value)

    def target(self, text: str) -> _Target | None:
        """What a `step:` reference points at; None for a plain literal; anything else is unsupported
        (malformed references, templates, references to inputs, items or unknown steps)."""
        found = self.refs.get(text)
        if found is not None:
            return found
        if len(text) > self.limits.max_string:  # a reference is a string too: too long is an error
            raise _Unsupported
        if text.startswith("step:"):
            # parse_ref's own shortcut, knowing the ids: a known id is a name, and one field is checked once
            name, dot, field = text[5:].partition(".")
            target = self.index.get(name)
            path = self.path(field) if dot else ()
            if target is not None and path is not None:
                found = (target, path, (self.step_tools[target].name, path))
        if found is None:
            found = self.parse(text)
            if found is None:
                return None
        if len(self.refs) < _MAX_CACHED:
            self.refs[text] = found
        return found

    def path(self, field: str) -> tuple[str] | None:
        """The one-field path `(field,)` (shared), or None when `field` is not a plain name."""
        if field in self.paths:
            return self.paths[field]
        path = self.paths[field] = _field_path(field) if _is_name(field) else None
        return path

    def parse(self, text: str) -> _Target | None:
        ref = parse_ref(text)
        if ref is None:
            if text.startswith(_REF_LIKE) or "{{" in text:
                raise _Unsupported
            return None
        target = self.index.get(ref.name) if ref.kind == "step" else None
        if target is None:
            raise _Unsupported
        return (target, ref.path, (self.step_tools[target].name, ref.path))


_MAX_CACHED = 65_536


def _fits(expected: frozenset[str] | None, target: _ToolInfo, path: tuple[Any, ...]) -> bool:
    """Whether the full validator accepts a reference to `path` in the target tool's output where a value of
    the `expected` JSON types goes (None: any): the path must exist, and the types agree."""
    root = target.tool.spec.output_schema
    base: schemas.Schema | None = root or None
    for cut in range(1, len(path) + 1):
        if schemas.at_path(base, path[:cut], root)[1]:
            return False  # the path cannot exist
    schema = schemas.at_path(base, path, root)[0] if path else base
    return schemas.compatible(schemas.types_of(schema, root), expected)


def _order(deps: list[tuple[int, ...]]) -> tuple[list[int], list[tuple[int, ...]]]:
    """(How many steps each step waits for, each step's dependents); raises when the graph has a cycle."""
    waits = [len(d) for d in deps]
    dependents: list[list[int]] = [[] for _ in deps]
    forward = False  # a step waits for one written after it: only then can there be a cycle
    for number, step_deps in enumerate(deps):
        for d in step_deps:
            dependents[d].append(number)
            if d > number:
                forward = True
    if forward:
        remaining = waits.copy()
        ready = [number for number, n in enumerate(waits) if n == 0]
        for number in ready:  # Kahn: the list grows while we walk it
            for child in dependents[number]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        if len(ready) != len(deps):
            raise _Unsupported  # a cycle: the full path reports it as a path
    return waits, [tuple(d) for d in dependents]


_EMPTY: dict[str, Any] = {}


def _text_ok(text: str, limits: Limits) -> bool:
    if len(text) > limits.max_string or "\x00" in text:
        return False
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def _scalar_ok(value: Any, limits: Limits) -> bool:
    """A literal scalar the full validator's value checks let through (other kinds: unsupported here)."""
    kind = type(value)
    if kind is str:
        return _text_ok(value, limits)
    if kind is int:
        return bool(INT_MIN <= value <= INT_MAX)
    if kind is float:
        return not (value != value or value == _INF or value == -_INF)
    return kind is bool or value is None
