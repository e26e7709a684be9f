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
from orchestrator.plan.refs import Node, compile_value, iter_refs, parse_ref
from orchestrator.plan.source import INT_MAX, INT_MIN, check_values
from orchestrator.registry import FunctionTool, Tool, ToolRegistry

_STEP_KEYS = frozenset({"id", "tool", "args", "depends_on", "description"})
_PLAN_KEYS = frozenset({"goal", "inputs", "steps", "output"})
_REF_PREFIXES = ("step:", "input:", "item")
_INF = float("inf")

LITERAL, REF, REFS, FIELDS = 0, 1, 2, 3
"""How an argument is given: a literal value, one step reference, a list of them, a list of references to one
field of several steps (``["step:a.value", "step:b.value"]``, the usual list)."""

StepRef = tuple[int, tuple[Any, ...]]
"""A reference as the fast path runs it: the referenced step's number, and the path into its output."""
ArgSpec = tuple[str, int, Any]
"""(argument name, LITERAL / REF / REFS / FIELDS, the value / a StepRef / StepRefs / (step numbers, field))."""


class FastTool:
    """What running the steps that call one tool with one set of argument names needs, shared by them."""

    __slots__ = ("call", "dump", "kind", "name")

    def __init__(self, tool: FunctionTool, names: frozenset[str], kind: str):
        self.name = tool.spec.name
        self.kind = kind
        # The same call the executor makes for such a step: exact type guards where the tool allows them
        # (FunctionTool.direct_call, falling back to Pydantic on any surprise), else Pydantic itself.
        self.call: Callable[[dict[str, Any]], Any] = tool.direct_call(names) or tool.start
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

    __slots__ = ("checked", "element_fits", "fits", "items", "items_types", "name", "quick", "types", "validator")

    def __init__(self, tool: FunctionTool, name: str, schema: schemas.Schema, root: schemas.Schema):
        self.name = name
        self.types = schemas.types_of(schema, root)
        items = schemas.deref(schema, root).get("items")
        self.items: schemas.Schema | None = items if isinstance(items, Mapping) else None
        self.items_types = schemas.types_of(self.items, root) if self.items is not None else None
        self.quick = tool.literal_check(name)
        self.validator: Any = None
        self.checked = False  # the validator was looked up
        # (target tool, path) -> whether a reference to it fits: as the whole value, as a list's element
        self.fits: dict[tuple[str, tuple[Any, ...]], bool] = {}
        self.element_fits: dict[tuple[str, tuple[Any, ...]], bool] = {}

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
    __slots__ = ("args", "fast", "kind", "required", "root", "tool")

    def __init__(self, tool: FunctionTool):
        self.tool = tool
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
            found = self.fast[key] = FastTool(self.tool, frozenset(key), self.kind)
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
    if type(data) is not dict or limits.max_model_steps is not None or limits.max_for_each is not None:
        return None
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
        specs: list[tuple[ArgSpec, ...]] = []
        tools: list[FastTool] = []
        deps: list[tuple[int, ...]] = []
        step_tools = self.step_tools
        for number, raw in enumerate(raw_steps):
            args = raw.get("args", _EMPTY)
            if type(args) is not dict:
                raise _Unsupported
            spec, step_deps = self.step(number, raw, args, step_tools[number])
            specs.append(spec)
            tools.append(step_tools[number].for_names(args.keys()))
            deps.append(step_deps)
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
            if type(sid) is not str or len(sid) > 64 or not _is_id(sid) or sid in index or type(name) is not str:
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

    def step(
        self, number: int, raw: dict[str, Any], args: dict[str, Any], info: _ToolInfo
    ) -> tuple[tuple[ArgSpec, ...], tuple[int, ...]]:
        """One step's arguments in flat form, and the numbers of the steps it waits for."""
        deps_raw = raw.get("depends_on", ())
        description = raw.get("description")
        if type(deps_raw) not in (list, tuple) or not args.keys() >= info.required:
            raise _Unsupported
        if description is not None and (type(description) is not str or not _text_ok(description, self.limits)):
            raise _Unsupported
        deps: list[int] = []
        spec: list[ArgSpec] = []
        known = info.args
        for name, value in args.items():
            arg = known.get(name)
            if arg is None:
                raise _Unsupported
            kind = type(value)
            if kind is int and arg.quick is not None:  # the usual literal, inline
                if not INT_MIN <= value <= INT_MAX or not arg.quick(value):
                    raise _Unsupported
                spec.append((name, LITERAL, value))
            elif kind is list and value and type(value[0]) is str and value[0].startswith("step:"):
                spec.append(self.ref_list(number, arg, value, deps))
            else:
                spec.append(self.arg(number, info, arg, value, deps))
        index = self.index
        for dep in deps_raw:
            found = index.get(dep) if type(dep) is str else None
            if found is None or found == number:
                raise _Unsupported
            deps.append(found)
        return tuple(spec), tuple(dict.fromkeys(deps)) if len(deps) > 1 else tuple(deps)

    def ref_list(self, number: int, arg: _Arg, value: list[Any], deps: list[int]) -> ArgSpec:
        """A list of step references: each one's target, path and type checked, as the full path does."""
        refs, fits = self.refs, arg.element_fits
        targets: list[int] = []
        paths: list[tuple[Any, ...]] = []
        for element in value:
            found = refs.get(element) if type(element) is str else None
            if found is None:
                found = self.target(element) if type(element) is str else None
                if found is None:  # a literal among references: the full path
                    raise _Unsupported
            target, path, key = found
            ok = fits.get(key)
            if ok is None:
                ok = fits[key] = _fits(arg.items_types, self.step_tools[target], path)
            if not ok or target == number:
                raise _Unsupported
            targets.append(target)
            paths.append(path)
        deps.extend(targets)
        first = paths[0]
        if len(first) == 1 and all(path is first for path in paths):  # shared one-field paths: one field
            return (arg.name, FIELDS, (tuple(targets), first[0]))
        return (arg.name, REFS, tuple(zip(targets, paths, strict=True)))

    def arg(self, number: int, info: _ToolInfo, arg: _Arg, value: Any, deps: list[int]) -> ArgSpec:
        kind = type(value)
        if kind is str:
            found = self.target(value)
            if found is None:
                if not _text_ok(value, self.limits) or not arg.literal_ok(info.tool, value):
                    raise _Unsupported
                return (arg.name, LITERAL, value)
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
        ref = parse_ref(text)
        if ref is None:
            if text.startswith(_REF_PREFIXES) or "{{" in text:
                raise _Unsupported
            return None
        target = self.index.get(ref.name) if ref.kind == "step" else None
        if target is None:
            raise _Unsupported
        path = ref.path
        found = (target, path, (self.step_tools[target].tool.spec.name, path))
        if len(self.refs) < 65_536:
            self.refs[text] = found
        return found


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
    for number, step_deps in enumerate(deps):
        for d in step_deps:
            dependents[d].append(number)
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


def _is_id(text: str) -> bool:
    """`text` matches the step id pattern (model.STEP_ID_PATTERN): an ASCII name not starting with a digit or -."""
    return text.isascii() and text[:1] not in ("", "-") and text.replace("-", "_").isidentifier()


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
        return INT_MIN <= value <= INT_MAX
    if kind is float:
        return not (value != value or value == _INF or value == -_INF)
    return kind is bool or value is None
