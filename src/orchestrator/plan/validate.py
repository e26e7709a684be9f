"""Validate a plan against the format and the tool registry, collecting every problem before anything runs.

:func:`check_plan` returns ``(compiled plan or None, issues)``; :func:`validate_plan` raises
:class:`PlanValidationError` with every issue, or returns the :class:`CompiledPlan` the executor runs.

Validation is one linear pass per step and costs a few microseconds a step (``orchestrator bench``):
steps of the usual shape are checked by hand instead of through Pydantic (the others still are),
what a reference points at is looked up once per tool and path, literal arguments are checked by a JSON
Schema validator built once per tool, and the :class:`~orchestrator.plan.model.Plan` object is only
built when someone asks for it.
"""

from __future__ import annotations

import difflib
import gc
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import PlanValidationError
from orchestrator.plan import schemas
from orchestrator.plan.arguments import literal_errors, validator_for
from orchestrator.plan.graph import find_cycle
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.limits import DEFAULT_LIMITS, MODEL_KINDS, Limits
from orchestrator.plan.model import InputSpec, Plan, Step
from orchestrator.plan.refs import (
    DictNode,
    ListNode,
    Literal_,
    Node,
    Ref,
    RefNode,
    TemplateNode,
    compile_value,
    format_path,
    iter_refs,
    looks_like_ref,
    parse_ref,
    template_bodies,
)
from orchestrator.plan.source import PathKey, SourceMap, check_values, read_plan_file
from orchestrator.registry import Tool, ToolRegistry

_INPUT_TYPES: dict[str, frozenset[str] | None] = {
    "string": frozenset({"string"}),
    "number": frozenset({"number", "integer"}),
    "integer": frozenset({"integer"}),
    "boolean": frozenset({"boolean"}),
    "array": frozenset({"array"}),
    "object": frozenset({"object"}),
    "any": None,
}

DirectCall = Callable[[dict[str, Any]], Any]


@dataclass(slots=True)
class CompiledStep:
    """A validated step bound to its tool, with references compiled.

    ``direct``, when set, calls the tool without Pydantic (see
    :meth:`orchestrator.registry.FunctionTool.direct_call`). Not frozen: a frozen dataclass's ``__init__``
    costs several times more, and one is built per step.
    """

    id: str
    tool: Tool
    args: Node
    for_each: Node | None
    deps: tuple[str, ...]
    tool_name: str = ""
    kind: str = ""
    simple: bool = False  # no for_each, no retries, no timeout: the executor's fast path
    on_error: str = "continue"
    retries: int = 0
    timeout_s: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    direct: DirectCall | None = None

    @property
    def step(self) -> Step:
        """The step as the plan format's model (built on demand: the executor does not need it)."""
        return Step.model_validate(self.raw)


@dataclass(frozen=True)
class CompiledPlan:
    """What the executor runs: a plan that passed validation against one registry, under `limits`."""

    data: Mapping[str, Any]
    steps: dict[str, CompiledStep]
    dependents: dict[str, tuple[str, ...]]
    output: Node
    critical_path: list[str] = field(default_factory=list)
    goal: str = ""
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS

    @cached_property
    def plan(self) -> Plan:
        """The plan as the format's model, built from the validated data the first time it is asked for."""
        return Plan.model_validate(self.data)

    def summary(self) -> str:
        n = len(self.steps)
        return f"valid: {n} step{'s' if n != 1 else ''}, critical path {len(self.critical_path)}"


class _Collector:
    """Gathers issues, filling in line and column from the source map."""

    def __init__(self, source: SourceMap | None):
        self.source = source
        self.issues: list[PlanIssue] = []

    def add(
        self,
        code: str,
        message: str,
        *,
        step_id: str | None = None,
        field: str | None = None,
        path: PathKey = (),
        hint: str | None = None,
    ) -> None:
        pos = self.source.at(path) if self.source else None
        self.issues.append(
            PlanIssue(
                code=code,
                message=message,
                step_id=step_id,
                field=field,
                hint=hint,
                line=pos[0] if pos else None,
                column=pos[1] if pos else None,
            )
        )


def _did_you_mean(name: str, options: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else None


def _field_name(loc: Sequence[int | str]) -> str:
    return format_path(tuple(loc), leading_dot=False).lstrip(".").replace(":", ".") or "(step)"


def _pydantic_issues(out: _Collector, exc: ValidationError, *, base: PathKey, step_id: str | None) -> None:
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        kind = error.get("type", "")
        if kind == "extra_forbidden":
            name = str(loc[-1]) if loc else "?"
            where = f"step {step_id!r}" if step_id else "plan"
            allowed = sorted((Step if step_id is not None else Plan).model_fields)
            out.add(
                "unknown_field",
                f"unknown field {name!r} in {where}",
                step_id=step_id,
                field=_field_name(loc),
                path=(*base, *loc),
                hint=_did_you_mean(name, allowed) or f"allowed: {', '.join(allowed)}",
            )
        elif kind == "missing":
            out.add("missing_field", "required field is missing", step_id=step_id, field=_field_name(loc), path=base)
        else:
            out.add("invalid_field", str(error["msg"]), step_id=step_id, field=_field_name(loc), path=(*base, *loc))


# --- steps ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _StepData:
    """One step's fields, read by hand (the usual shape) or through Pydantic (anything else)."""

    index: int
    id: str
    tool: str
    args: Mapping[str, Any]
    depends_on: Sequence[str]
    for_each: Any
    retries: int
    timeout_s: float | None
    on_error: str
    raw: Mapping[str, Any]


_FAST_KEYS = frozenset({"id", "tool", "args", "depends_on", "description"})
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")  # model.STEP_ID_PATTERN, matched whole with fullmatch
_EMPTY: Mapping[str, Any] = {}


def _fast_step(index: int, raw: Any) -> _StepData | None:
    """The step's fields when it is certainly valid as the format says and of the usual shape, else None.

    None sends the step through Pydantic, which then says exactly what is wrong: this only ever accepts a
    subset of what ``Step.model_validate`` accepts.
    """
    if type(raw) is not dict or not raw.keys() <= _FAST_KEYS:
        return None
    sid, tool = raw.get("id"), raw.get("tool")
    if type(sid) is not str or len(sid) > 64 or _ID.fullmatch(sid) is None or type(tool) is not str or not tool:
        return None
    args = raw.get("args", _EMPTY)
    deps = raw.get("depends_on", ())
    description = raw.get("description")
    if (
        type(args) is not dict
        or type(deps) not in (list, tuple)
        or (description is not None and type(description) is not str)
    ):
        return None
    for key in args:
        if type(key) is not str:
            return None
    for dep in deps:
        if type(dep) is not str:
            return None
    return _StepData(index, sid, tool, args, deps, None, 0, None, "continue", raw)


def _model_step(index: int, step: Step, raw: Mapping[str, Any]) -> _StepData:
    return _StepData(
        index, step.id, step.tool, step.args, step.depends_on, step.for_each, step.retries, step.timeout_s,
        step.on_error, raw,
    )  # fmt: skip


def check_plan(
    data: Any,
    registry: ToolRegistry,
    *,
    source: SourceMap | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[CompiledPlan | None, list[PlanIssue]]:
    """Validate plan data (parsed JSON or a Plan) and compile it; never raises for a bad plan.

    Args:
        data: the plan: parsed JSON (a mapping) or a :class:`Plan`.
        registry: the tools the plan may call.
        source: where the plan's values stand in its text, for line and column in issues.
        limits: size limits; :class:`~orchestrator.plan.limits.ModelPlanLimits` for a plan a model wrote.
    """
    # Validation builds many long-lived objects and no reference cycles; meanwhile the cyclic collector's
    # full passes would walk the whole plan again and again (at 50,000 steps, half the time). It is paused
    # for this synchronous call (nothing else runs on this thread) and resumed as it was.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _check_plan(data, registry, source, limits)
    finally:
        if paused:
            gc.enable()


def _check_plan(
    data: Any, registry: ToolRegistry, source: SourceMap | None, limits: Limits
) -> tuple[CompiledPlan | None, list[PlanIssue]]:
    out = _Collector(source)
    if isinstance(data, Plan):
        data = data.model_dump(exclude_unset=True)
    if not isinstance(data, Mapping):
        out.add("not_an_object", f"a plan is a JSON object with 'steps', not {type(data).__name__}")
        return None, out.issues
    for path, code, message in check_values(data, limits):
        step_id = _raw_step_id(data, path)
        out.add(
            code, message, step_id=step_id, field=_field_name(path[2:]) if step_id else _field_name(path), path=path
        )
    if out.issues:
        return None, out.issues

    raw_steps = data.get("steps")
    header = {k: v for k, v in data.items() if k != "steps"}
    try:
        head = Plan.model_validate({**header, "steps": [{"id": "_", "tool": "_"}]})
    except ValidationError as exc:
        _pydantic_issues(out, exc, base=(), step_id=None)
        head = None
    if not isinstance(raw_steps, list) or not raw_steps:
        out.add("no_steps", "a plan needs a non-empty list 'steps'", field="steps", path=("steps",))
        return None, out.issues

    steps: list[_StepData] = []
    for index, raw in enumerate(raw_steps):
        fast = _fast_step(index, raw)
        if fast is not None:
            steps.append(fast)
            continue
        step_id = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else f"#{index}"
        if not isinstance(raw, Mapping):
            out.add("invalid_step", "a step is a JSON object", step_id=step_id, path=("steps", index))
            continue
        try:
            steps.append(_model_step(index, Step.model_validate(raw), raw))
        except ValidationError as exc:
            _pydantic_issues(out, exc, base=("steps", index), step_id=step_id)

    inputs: Mapping[str, InputSpec] = head.inputs if head else {}
    compiled = _Checker(out, registry, inputs, raw_steps, limits).check(steps)
    output_node = compile_value(data.get("output"))
    _check_output(out, output_node, compiled, inputs)
    if out.issues or head is None or len(steps) != len(raw_steps):
        return None, out.issues
    graph = _graph(out, compiled, {step.id: step.index for step in steps})
    if graph is None:
        return None, out.issues
    order, dependents = graph
    return (
        CompiledPlan(
            data=data,
            steps=compiled,
            dependents={k: tuple(v) for k, v in dependents.items()},
            output=output_node,
            critical_path=_critical_path(order, compiled),
            goal=head.goal,
            inputs=head.inputs,
            limits=limits,
        ),
        [],
    )


def _raw_step_id(data: Mapping[str, Any], path: PathKey) -> str | None:
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        steps = data.get("steps")
        if isinstance(steps, list) and path[1] < len(steps) and isinstance(steps[path[1]], Mapping):
            sid = steps[path[1]].get("id")
            return sid if isinstance(sid, str) else f"#{path[1]}"
    return None


def _graph(
    out: _Collector, compiled: Mapping[str, CompiledStep], index: Mapping[str, int]
) -> tuple[list[str], dict[str, list[str]]] | None:
    """(A topological order (Kahn, stable in plan order), each step's dependents), or None after reporting
    the cycle as a path."""
    remaining = {sid: len(cs.deps) for sid, cs in compiled.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in compiled}
    for sid, cs in compiled.items():
        for d in cs.deps:
            dependents[d].append(sid)
    order = [sid for sid, n in remaining.items() if n == 0]
    for sid in order:  # the list grows while we walk it
        for child in dependents[sid]:
            remaining[child] -= 1
            if remaining[child] == 0:
                order.append(child)
    if len(order) == len(compiled):
        return order, dependents
    cycle = find_cycle({sid: cs.deps for sid, cs in compiled.items()}) or sorted(set(compiled) - set(order))[:1]
    first = cycle[0]
    out.add(
        "cycle",
        "dependency cycle: " + " -> ".join(cycle),
        step_id=first,
        field="depends_on",
        path=("steps", index.get(first, 0)),
    )
    return None


def _critical_path(order: list[str], compiled: Mapping[str, CompiledStep]) -> list[str]:
    """The longest chain of dependent steps (by step count), first step first."""
    length: dict[str, int] = {}
    parent: dict[str, str | None] = {}
    for sid in order:
        best: str | None = None
        for d in compiled[sid].deps:
            if best is None or length[d] > length[best]:
                best = d
        parent[sid] = best
        length[sid] = 1 + (length[best] if best is not None else 0)
    end: str | None = max(length, key=length.__getitem__) if length else None
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = parent[end]
    return path[::-1]


@dataclass(slots=True)
class _ArgInfo:
    schema: Mapping[str, Any]  # the argument's schema in the tool's input schema
    items: Mapping[str, Any] | None  # its `items`, for lists of references
    validator: Any  # JSON Schema validator for literals, or None
    python_check: bool  # also ask the tool's own check_value
    quick: Callable[[Any], bool] | None = None  # an exact type check standing for a plain type's schema


_UNBUILT: Any = object()


def _no_check(name: str) -> None:
    return None


class _MissingTool:
    """Placeholder bound to steps whose tool is unknown; such a plan never compiles."""

    spec: Any = None

    async def invoke(self, args: Mapping[str, Any]) -> Any:  # pragma: no cover - never runs
        raise AssertionError("unreachable")

    def check_value(self, arg: str, value: Any) -> str | None:  # pragma: no cover
        return None


_MISSING_TOOL: Tool = _MissingTool()


def _tool_name_problem(name: str) -> str | None:
    """Why a tool name that is not registered looks like a trick: spaces around it, hidden or foreign letters."""
    if name != name.strip():
        return "the name has spaces around it"
    odd = [ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in "_-."))]
    if odd:
        ch = odd[0]
        label = unicodedata.name(ch, f"U+{ord(ch):04X}")
        return f"the name holds {ch!r} (U+{ord(ch):04X} {label}), which no tool name has"
    return None


class _Checker:
    """The checks of every step: tools, references, argument types, limits. One per plan."""

    def __init__(
        self,
        out: _Collector,
        registry: ToolRegistry,
        inputs: Mapping[str, InputSpec],
        raw_steps: list[Any],
        limits: Limits,
    ):
        self.out = out
        self.registry = registry
        self.inputs = inputs
        self.raw_steps = raw_steps
        self.limits = limits
        self.by_id: dict[str, _StepData] = {}
        self.tools: dict[str, Tool | None] = {}
        # (step id, path) -> (schema, root, error): what a reference points at, worked out once per target
        self._targets: dict[
            tuple[str, bool, tuple[Any, ...]], tuple[schemas.Schema | None, schemas.Schema, str | None]
        ] = {}
        self._compat: dict[tuple[int, int], bool] = {}
        self._args: dict[tuple[str, str], _ArgInfo | None] = {}
        self._kinds: dict[str, str] = {}
        self._strings: dict[str, Node] = {}  # compiled strings: the same reference stands in many steps

    def tool(self, name: str) -> Tool | None:
        if name in self.tools:
            return self.tools[name]
        found = self.registry.get(name) if name in self.registry else None
        self.tools[name] = found
        return found

    def check(self, steps: list[_StepData]) -> dict[str, CompiledStep]:
        out = self.out
        by_id = self.by_id
        for step in steps:
            first = by_id.get(step.id)
            if first is not None:
                out.add(
                    "duplicate_id",
                    f"step id {step.id!r} is used more than once (first at step #{first.index})",
                    step_id=step.id,
                    field="id",
                    path=("steps", step.index, "id"),
                )
            else:
                by_id[step.id] = step
        self._check_limits()
        compiled: dict[str, CompiledStep] = {}
        for step in by_id.values():
            compiled[step.id] = self.step(step)
        return compiled

    def _check_limits(self) -> None:
        limits = self.limits
        if limits.max_model_steps is not None:
            model_steps = [s.id for s in self.by_id.values() if self._kind(s.tool) in MODEL_KINDS]
            if len(model_steps) > limits.max_model_steps:
                named = ", ".join(model_steps[:5]) + (", ..." if len(model_steps) > 5 else "")
                what = f"{len(model_steps)} steps use a model ({named})"
                self.out.add(
                    "too_many_model_steps",
                    limits.refusal(what, limits.max_model_steps, "max_model_steps"),
                    field="steps",
                    path=("steps",),
                )
        total = 0
        for step in self.by_id.values():
            if isinstance(step.for_each, list):
                total += len(step.for_each)
                if limits.max_for_each is not None and len(step.for_each) > limits.max_for_each:
                    what = f"for_each over {len(step.for_each):,} elements"
                    self.out.add(
                        "too_large",
                        limits.refusal(what, limits.max_for_each, "max_for_each"),
                        step_id=step.id,
                        field="for_each",
                        path=("steps", step.index, "for_each"),
                    )
        if limits.max_for_each_total is not None and total > limits.max_for_each_total:
            what = f"the for_each steps hold {total:,} elements in all"
            self.out.add(
                "too_large", limits.refusal(what, limits.max_for_each_total, "max_for_each_total"), field="steps"
            )

    def _kind(self, tool_name: str) -> str | None:
        tool = self.tool(tool_name)
        return self.kind_of(tool) if tool is not None else None

    def kind_of(self, tool: Tool) -> str:
        """The tool's kind as text (an enum's ``.value`` is slow enough to matter once per step)."""
        kind = self._kinds.get(tool.spec.name)
        if kind is None:
            kind = self._kinds[tool.spec.name] = tool.spec.kind.value
        return kind

    # --- one step -------------------------------------------------------------------------------------

    def issue(
        self, step: _StepData, code: str, message: str, field: str, path: PathKey, hint: str | None = None
    ) -> None:
        self.out.add(code, message, step_id=step.id, field=field, path=path, hint=hint)

    def step(self, step: _StepData) -> CompiledStep:
        base: PathKey = ("steps", step.index)
        tool = self.tool(step.tool)
        if tool is None:
            self.issue(
                step,
                "unknown_tool",
                f"unknown tool {step.tool!r}" + (f": {odd}" if (odd := _tool_name_problem(step.tool)) else ""),
                "tool",
                (*base, "tool"),
                _did_you_mean(step.tool, self.registry.names()) or "run `orchestrator tools` to list them",
            )
        refs: list[str] = []
        item_schema: tuple[schemas.Schema | None, schemas.Schema] = (None, {})
        for_each: Node | None = None
        if step.for_each is not None:
            for_each, item_schema = self.check_for_each(step, base, refs)
        before = len(self.out.issues)
        args = self.check_args(step, tool, base, refs, item_schema)
        for dep in step.depends_on:
            if dep == step.id:
                self.issue(
                    step, "self_dependency", "a step cannot depend on itself", "depends_on", (*base, "depends_on")
                )
            elif dep not in self.by_id:
                hint = _did_you_mean(dep, list(self.by_id))
                self.issue(
                    step,
                    "unknown_step",
                    f"depends_on names unknown step {dep!r}",
                    "depends_on",
                    (*base, "depends_on"),
                    hint,
                )
            else:
                refs.append(dep)
        deps = tuple(dict.fromkeys(refs)) if len(refs) > 1 else tuple(refs)
        if tool is None:
            return CompiledStep(step.id, _MISSING_TOOL, Literal_({}), for_each, deps)
        args_node: Node = Literal_(step.args)
        for node in args.values():
            if type(node) is not Literal_:
                args_node = DictNode(tuple(args.items()))
                break
        simple = step.for_each is None and step.retries == 0 and step.timeout_s is None
        direct_call = getattr(tool, "direct_call", None)
        proven = len(self.out.issues) == before
        return CompiledStep(
            step.id,
            tool,
            args_node,
            for_each,
            deps,
            tool.spec.name,
            self.kind_of(tool),
            simple,
            step.on_error,
            step.retries,
            step.timeout_s,
            step.raw,
            direct_call(frozenset(args)) if simple and proven and direct_call is not None else None,
        )

    def check_for_each(
        self, step: _StepData, base: PathKey, refs: list[str]
    ) -> tuple[Node, tuple[schemas.Schema | None, schemas.Schema]]:
        path = (*base, "for_each")
        malformed: list[bool] = []
        node = compile_value(step.for_each, malformed)
        if malformed:
            self._check_malformed(step, step.for_each, path, "for_each")
        if isinstance(node, Literal_):
            if not isinstance(node.value, list):
                self.issue(
                    step,
                    "invalid_for_each",
                    "for_each must be a reference to a list (e.g. step:parse.items) or a list",
                    "for_each",
                    path,
                )
            return node, (None, {})
        found = list(iter_refs(node))
        for ref, _ in found:
            self.check_ref(step, ref, path, "for_each", refs, None)
        if len(found) == 1 and found[0][1]:
            schema, root = self.schema_of(found[0][0], (None, {}))
            kinds = schemas.types_of(schema, root)
            if kinds is not None and "array" not in kinds:
                self.issue(
                    step,
                    "invalid_for_each",
                    f"for_each must be a list, but {found[0][0]} is {'/'.join(sorted(kinds))}",
                    "for_each",
                    path,
                )
            elif schema is not None:
                items = schemas.deref(schema, root).get("items")
                return node, (items if isinstance(items, Mapping) else None, root)
        return node, (None, {})

    def target(self, ref: Ref) -> tuple[schemas.Schema | None, schemas.Schema, str | None]:
        """(schema at a step reference's path, its $ref root, an error if the path cannot exist).

        Worked out once per (tool, for_each or not, path): plans call few tools many times.
        """
        target = self.by_id[ref.name]
        key = (target.tool, target.for_each is not None, ref.path)
        found = self._targets.get(key)
        if found is None:
            tool = self.tool(target.tool)
            root: schemas.Schema = tool.spec.output_schema if tool is not None else {}
            base: schemas.Schema | None = root or None
            if target.for_each is not None and base is not None:
                base = {"type": "array", "items": base}
            error = self._path_error(base, ref.path, root, "") if ref.path else None
            schema = None if error else schemas.at_path(base, ref.path, root)[0]
            found = self._targets[key] = (schema, root, error)
        if found[2] is None:
            return found
        origin = f"step:{ref.name}" + (" (a for_each step: a list)" if target.for_each is not None else "")
        return found[0], found[1], origin + found[2]

    @staticmethod
    def _path_error(
        base: schemas.Schema | None, path: tuple[Any, ...], root: schemas.Schema, origin: str
    ) -> str | None:
        for cut in range(1, len(path) + 1):
            _, error = schemas.at_path(base, path[:cut], root)
            if error:
                return f"{origin}{format_path(path[: cut - 1])} {error}"
        return None

    def schema_of(
        self, ref: Ref, item: tuple[schemas.Schema | None, schemas.Schema] | None
    ) -> tuple[schemas.Schema | None, schemas.Schema]:
        """The schema of what a (valid) reference points at, or None when unknown."""
        if ref.kind == "step" and ref.name in self.by_id:
            schema, root, _ = self.target(ref)
            return schema, root
        if ref.kind == "input" and ref.name in self.inputs:
            kinds = _INPUT_TYPES[self.inputs[ref.name].type]
            if kinds is None or ref.path:
                return None, {}
            return {"type": sorted(kinds)[0] if len(kinds) == 1 else "number"}, {}
        if ref.kind == "item" and item is not None and item[0] is not None:
            sub, _ = schemas.at_path(item[0], ref.path, item[1])
            return sub, item[1]
        return None, {}

    def check_ref(
        self,
        step: _StepData,
        ref: Ref,
        path: PathKey,
        field: str,
        refs: list[str],
        item: tuple[schemas.Schema | None, schemas.Schema] | None,
    ) -> None:
        if ref.kind == "step":
            if ref.name == step.id:
                self.issue(step, "self_dependency", f"{ref} refers to the step itself", field, path)
            elif ref.name not in self.by_id:
                hint = _did_you_mean(ref.name, list(self.by_id))
                self.issue(step, "unknown_step", f"{ref} refers to unknown step {ref.name!r}", field, path, hint)
            else:
                refs.append(ref.name)
                error = self.target(ref)[2]
                if error:
                    self.issue(step, "unknown_field", f"{ref}: {error}", field, path)
        elif ref.kind == "input":
            if ref.name not in self.inputs:
                declared = ", ".join(sorted(self.inputs)) or "none"
                self.issue(
                    step,
                    "unknown_input",
                    f"{ref} refers to undeclared input {ref.name!r} (declared: {declared})",
                    field,
                    path,
                    f'declare it under "inputs": {{"{ref.name}": {{"type": "string"}}}}',
                )
        elif item is None or step.for_each is None:
            self.issue(step, "item_outside_for_each", f"{ref} is only meaningful in a step with for_each", field, path)
        elif item[0] is not None:
            error = self._path_error(item[0], ref.path, item[1], "item")
            if error:
                self.issue(step, "unknown_field", f"{ref}: {error}", field, path)

    def _check_malformed(self, step: _StepData, raw: Any, path: PathKey, field: str) -> None:
        if isinstance(raw, str):
            if looks_like_ref(raw):
                self.issue(
                    step,
                    "malformed_reference",
                    f"{raw!r} looks like a reference but is not one",
                    field,
                    path,
                    "write step:<id>, step:<id>.<field>[<n>], input:<name> or item:<field>",
                )
            for body in template_bodies(raw):
                if parse_ref(body) is None and looks_like_ref(body):
                    self.issue(step, "malformed_reference", f"{{{{{body}}}}} is not a valid reference", field, path)
        elif isinstance(raw, Mapping):
            for k, v in raw.items():
                self._check_malformed(step, v, (*path, k), f"{field}.{k}")
        elif isinstance(raw, list):
            for i, v in enumerate(raw):
                self._check_malformed(step, v, (*path, i), f"{field}[{i}]")

    def arg_info(self, tool: Tool, name: str) -> _ArgInfo | None:
        """What checking argument `name` of `tool` needs, worked out once per plan; None: no such argument."""
        key = (tool.spec.name, name)
        if key in self._args:
            return self._args[key]
        schema = tool.spec.input_schema
        props = schema.get("properties", {}) or {}
        info: _ArgInfo | None = None
        if name in props:
            items = schemas.deref(props[name], schema).get("items")
            # A plain type's schema is only its type: an exact type check says all of it (the JSON Schema
            # validator is then only asked for the message, when that check fails). Otherwise the schema
            # validator checks, and the tool's own check runs too.
            quick = getattr(tool, "literal_check", _no_check)(name)
            # The JSON Schema validator is built on first need (a literal to check), not for references.
            info = _ArgInfo(props[name], items if isinstance(items, Mapping) else None, _UNBUILT, quick is None, quick)
        self._args[key] = info
        return info

    def check_args(
        self,
        step: _StepData,
        tool: Tool | None,
        base: PathKey,
        refs: list[str],
        item: tuple[schemas.Schema | None, schemas.Schema],
    ) -> dict[str, Node]:
        """Compile the arguments and check them (references, and against the tool's input schema)."""
        schema: Mapping[str, Any] = tool.spec.input_schema if tool is not None else {}
        malformed: list[bool] = []
        args: dict[str, Node] = {}
        for name, value in step.args.items():
            node = args[name] = compile_value(value, malformed, self._strings)
            kind = type(node)
            info = self.arg_info(tool, name) if tool is not None else None
            if info is None and tool is not None:
                self.unknown_arg(step, tool, name, base)
            if kind is Literal_:
                if info is not None:
                    self.check_literal(step, tool, info, name, value, base)  # type: ignore[arg-type]
            elif kind is RefNode:
                self._arg_ref(step, name, node.ref, info, schema, base, refs, item)  # type: ignore[union-attr]
            elif kind is ListNode:
                self._arg_list(step, name, node, info, schema, base, refs, item)  # type: ignore[arg-type]
            else:
                self._arg_other(step, name, node, info, schema, base, refs, item)
        if malformed:
            for name, value in step.args.items():
                self._check_malformed(step, value, (*base, "args", name), f"args.{name}")
        if tool is not None:
            for name in tool.spec.input_schema.get("required", ()) or ():
                if name not in args:
                    self.missing_arg(step, tool, name, base)
        return args

    def _arg_ref(
        self,
        step: _StepData,
        name: str,
        ref: Ref,
        info: _ArgInfo | None,
        schema: Mapping[str, Any],
        base: PathKey,
        refs: list[str],
        item: tuple[schemas.Schema | None, schemas.Schema],
    ) -> None:
        if ref.kind == "step" and ref.name in self.by_id and ref.name != step.id:
            refs.append(ref.name)
            target = self.target(ref)
            if target[2] is not None:
                self.issue(step, "unknown_field", f"{ref}: {target[2]}", f"args.{name}", (*base, "args", name))
        else:
            self.check_ref(step, ref, (*base, "args", name), f"args.{name}", refs, item)
        if info is not None:
            self.check_ref_type(step, name, info.schema, schema, ref, base, item)

    def _arg_list(
        self,
        step: _StepData,
        name: str,
        node: ListNode,
        info: _ArgInfo | None,
        schema: Mapping[str, Any],
        base: PathKey,
        refs: list[str],
        item: tuple[schemas.Schema | None, schemas.Schema],
    ) -> None:
        items = info.items if info is not None else None
        compat, by_id = self._compat, self.by_id
        for index, child in enumerate(node.items):
            if type(child) is not RefNode:
                for ref, _ in iter_refs(child):
                    self.check_ref(step, ref, (*base, "args", name), f"args.{name}", refs, item)
                continue
            ref = child.ref
            if ref.kind == "step" and ref.name in by_id and ref.name != step.id:
                # The usual list of step references, inline: a known step, a path checked once per tool,
                # a type compatibility already known for this pair of schemas.
                refs.append(ref.name)
                target = self.target(ref)
                if target[2] is not None:
                    self.issue(step, "unknown_field", f"{ref}: {target[2]}", f"args.{name}", (*base, "args", name))
                elif items is not None and not compat.get((id(items), id(target[0]))):
                    self.check_ref_type(step, f"{name}[{index}]", items, schema, ref, base, item)
                continue
            self.check_ref(step, ref, (*base, "args", name), f"args.{name}", refs, item)
            if items is not None:
                self.check_ref_type(step, f"{name}[{index}]", items, schema, ref, base, item)

    def _arg_other(
        self,
        step: _StepData,
        name: str,
        node: Node,
        info: _ArgInfo | None,
        schema: Mapping[str, Any],
        base: PathKey,
        refs: list[str],
        item: tuple[schemas.Schema | None, schemas.Schema],
    ) -> None:
        for ref, _ in iter_refs(node):
            self.check_ref(step, ref, (*base, "args", name), f"args.{name}", refs, item)
        if type(node) is TemplateNode and info is not None:
            expected = schemas.types_of(info.schema, schema)
            if not schemas.compatible(frozenset({"string"}), expected):
                self.issue(
                    step,
                    "invalid_arg",
                    f"argument {name!r} expects {'/'.join(sorted(expected or []))}, but a template gives text",
                    f"args.{name}",
                    (*base, "args", name),
                )

    def unknown_arg(self, step: _StepData, tool: Tool, name: str, base: PathKey) -> None:
        schema = tool.spec.input_schema
        props = schema.get("properties", {}) or {}
        if schema.get("additionalProperties") is False:
            hint = _did_you_mean(name, list(props)) or f"arguments: {', '.join(sorted(props)) or 'none'}"
            message = f"tool {tool.spec.name!r} has no argument {name!r}"
            self.issue(step, "unknown_arg", message, f"args.{name}", (*base, "args", name), hint)

    def missing_arg(self, step: _StepData, tool: Tool, name: str, base: PathKey) -> None:
        props = tool.spec.input_schema.get("properties", {}) or {}
        desc = props.get(name, {}).get("description")
        message = f"missing required argument {name!r} for tool {tool.spec.name!r}"
        self.issue(step, "missing_arg", message, f"args.{name}", (*base, "args"), desc)

    def check_literal(self, step: _StepData, tool: Tool, info: _ArgInfo, name: str, value: Any, base: PathKey) -> None:
        if info.quick is not None:
            if info.quick(value):
                return
            problems = literal_errors(tool, name, value)
            for where, message in problems[:1]:
                self.issue(
                    step, "invalid_arg", f"argument {name!r}: {message}", f"args.{name}{where}", (*base, "args", name)
                )
            if problems:
                return
            self.python_check(step, tool, name, value, base)  # the schema lets it pass: the tool decides
            return
        if info.validator is _UNBUILT:
            info.validator = validator_for(tool, name)
        validator = info.validator
        if validator is not None:
            try:
                valid = validator.is_valid(value)
            except Exception:  # not JSON data: literal_errors says so
                valid = False
            if not valid:
                for where, message in literal_errors(tool, name, value)[:1]:
                    self.issue(
                        step,
                        "invalid_arg",
                        f"argument {name!r}: {message}",
                        f"args.{name}{where}",
                        (*base, "args", name),
                    )
                return
        if info.python_check:
            self.python_check(step, tool, name, value, base)

    def python_check(self, step: _StepData, tool: Tool, name: str, value: Any, base: PathKey) -> None:
        error = tool.check_value(name, value)
        if error:
            self.issue(step, "invalid_arg", f"argument {name!r}: {error}", f"args.{name}", (*base, "args", name))

    def check_ref_type(
        self,
        step: _StepData,
        name: str,
        target: schemas.Schema,
        root: schemas.Schema,
        ref: Ref,
        base: PathKey,
        item: tuple[schemas.Schema | None, schemas.Schema],
    ) -> None:
        key: tuple[int, int] | None = None
        if ref.kind == "step" and ref.name in self.by_id:
            # Both schemas live as long as this checker (in the tool specs or in self._targets): ids are stable.
            key = (id(target), id(self.target(ref)[0]))
            if self._compat.get(key):
                return
        ref_schema, ref_root = self.schema_of(ref, item)
        expected = schemas.types_of(target, root)
        got = schemas.types_of(ref_schema, ref_root)
        ok = schemas.compatible(got, expected)
        if key is not None:
            self._compat[key] = ok
        if not ok:
            self.issue(
                step,
                "invalid_arg",
                f"argument {name!r} expects {'/'.join(sorted(expected or []))}, "
                f"but {ref} is {'/'.join(sorted(got or []))}",
                f"args.{name.split('[')[0]}",
                (*base, "args", name.split("[")[0]),
            )


def _check_output(
    out: _Collector, node: Node, compiled: Mapping[str, CompiledStep], inputs: Mapping[str, InputSpec]
) -> None:
    for ref, _ in iter_refs(node):
        if ref.kind == "step" and ref.name not in compiled:
            out.add(
                "unknown_step",
                f"output {ref} refers to unknown step {ref.name!r}",
                field="output",
                path=("output",),
                hint=_did_you_mean(ref.name, list(compiled)),
            )
        elif ref.kind == "input" and ref.name not in inputs:
            out.add(
                "unknown_input",
                f"output {ref} refers to undeclared input {ref.name!r}",
                field="output",
                path=("output",),
            )
        elif ref.kind == "item":
            out.add("item_outside_for_each", "output cannot use item:", field="output", path=("output",))


def validate_plan(
    plan: Plan | Mapping[str, Any] | CompiledPlan,
    registry: ToolRegistry,
    *,
    source: SourceMap | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> CompiledPlan:
    """Validate and compile, or raise PlanValidationError listing every problem."""
    if isinstance(plan, CompiledPlan):
        return plan
    compiled, issues = check_plan(plan, registry, source=source, limits=limits)
    if compiled is None:
        raise PlanValidationError(issues, source=source.origin if source else None)
    return compiled


def load_plan(path: Path | str, registry: ToolRegistry, *, limits: Limits = DEFAULT_LIMITS) -> CompiledPlan:
    """Read, parse and validate a plan file (errors carry the file, line and column)."""
    data, source = read_plan_file(Path(path), limits=limits)
    return validate_plan(data, registry, source=source, limits=limits)
