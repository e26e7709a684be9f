"""Validate a plan against the format and the tool registry, collecting every problem before anything runs.

:func:`check_plan` returns ``(compiled plan or None, issues)``; :func:`validate_plan` raises
:class:`PlanValidationError` with every issue, or returns the :class:`CompiledPlan` the executor runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import PlanValidationError
from orchestrator.plan import schemas
from orchestrator.plan.graph import critical_path, find_cycle
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.model import InputSpec, Plan, Step
from orchestrator.plan.refs import (
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
from orchestrator.plan.source import DEFAULT_LIMITS, Limits, PathKey, SourceMap, check_sizes, read_plan_file
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


@dataclass(frozen=True, slots=True)
class CompiledStep:
    """A validated step bound to its tool, with references compiled."""

    id: str
    step: Step
    tool: Tool
    args: Node
    for_each: Node | None
    deps: tuple[str, ...]
    tool_name: str = ""
    kind: str = ""
    simple: bool = False  # no for_each, no retries, no timeout: the executor's fast path


@dataclass(frozen=True)
class CompiledPlan:
    """What the executor runs: a plan that passed validation against one registry."""

    plan: Plan
    steps: dict[str, CompiledStep]
    dependents: dict[str, tuple[str, ...]]
    output: Node
    critical_path: list[str] = field(default_factory=list)

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


def check_plan(
    data: Any,
    registry: ToolRegistry,
    *,
    source: SourceMap | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[CompiledPlan | None, list[PlanIssue]]:
    """Validate plan data (parsed JSON or a Plan) and compile it; never raises for a bad plan."""
    out = _Collector(source)
    if isinstance(data, Plan):
        data = data.model_dump(exclude_unset=True)
    if not isinstance(data, Mapping):
        out.add("not_an_object", f"a plan is a JSON object with 'steps', not {type(data).__name__}")
        return None, out.issues
    for path, message in check_sizes(data, limits):
        step_id = _raw_step_id(data, path)
        out.add("too_large", message, step_id=step_id, field=_field_name(path[2:]) if step_id else None, path=path)
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

    steps: list[tuple[int, Step]] = []
    for index, raw in enumerate(raw_steps):
        step_id = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else f"#{index}"
        if not isinstance(raw, Mapping):
            out.add("invalid_step", "a step is a JSON object", step_id=step_id, path=("steps", index))
            continue
        try:
            steps.append((index, Step.model_validate(raw)))
        except ValidationError as exc:
            _pydantic_issues(out, exc, base=("steps", index), step_id=step_id)

    inputs: Mapping[str, InputSpec] = head.inputs if head else {}
    compiled = _check_steps(out, steps, registry, inputs, raw_steps)
    output_node = compile_value(data.get("output"))
    if compiled is not None:
        _check_output(out, output_node, compiled, inputs)
    if out.issues or head is None or compiled is None or len(steps) != len(raw_steps):
        return None, out.issues
    plan = Plan(goal=head.goal, inputs=dict(inputs), steps=[s for _, s in steps], output=data.get("output"))
    deps = {sid: cs.deps for sid, cs in compiled.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in compiled}
    for sid, ds in deps.items():
        for d in ds:
            dependents[d].append(sid)
    return (
        CompiledPlan(
            plan=plan,
            steps=compiled,
            dependents={k: tuple(v) for k, v in dependents.items()},
            output=output_node,
            critical_path=critical_path(deps),
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


def _check_steps(
    out: _Collector,
    steps: list[tuple[int, Step]],
    registry: ToolRegistry,
    inputs: Mapping[str, InputSpec],
    raw_steps: list[Any],
) -> dict[str, CompiledStep] | None:
    by_id: dict[str, tuple[int, Step]] = {}
    all_ids = [s.get("id") for s in raw_steps if isinstance(s, Mapping) and isinstance(s.get("id"), str)]
    for index, step in steps:
        if step.id in by_id:
            out.add(
                "duplicate_id",
                f"step id {step.id!r} is used more than once (first at step #{by_id[step.id][0]})",
                step_id=step.id,
                field="id",
                path=("steps", index, "id"),
            )
        else:
            by_id[step.id] = (index, step)

    compiled: dict[str, CompiledStep] = {}
    for index, step in by_id.values():
        base: PathKey = ("steps", index)
        tool: Tool | None = None
        if step.tool in registry:
            tool = registry.get(step.tool)
        else:
            out.add(
                "unknown_tool",
                f"unknown tool {step.tool!r}",
                step_id=step.id,
                field="tool",
                path=(*base, "tool"),
                hint=_did_you_mean(step.tool, registry.names()) or "run `orchestrator tools` to list them",
            )
        args = {k: compile_value(v) for k, v in step.args.items()}
        for_each = compile_value(step.for_each) if step.for_each is not None else None
        deps: list[str] = []
        ctx = _StepCheck(out, step, base, registry, by_id, inputs, all_ids)
        if for_each is not None:
            ctx.check_for_each(for_each)
        for name, node in args.items():
            ctx.check_refs(node, (*base, "args", name), f"args.{name}", raw=step.args[name])
        for dep in step.depends_on:
            if dep == step.id:
                out.add(
                    "self_dependency",
                    "a step cannot depend on itself",
                    step_id=step.id,
                    field="depends_on",
                    path=(*base, "depends_on"),
                )
            elif dep not in by_id:
                out.add(
                    "unknown_step",
                    f"depends_on names unknown step {dep!r}",
                    step_id=step.id,
                    field="depends_on",
                    path=(*base, "depends_on"),
                    hint=_did_you_mean(dep, list(by_id)),
                )
        deps = list(dict.fromkeys([*ctx.step_refs, *(d for d in step.depends_on if d in by_id and d != step.id)]))
        if tool is not None:
            ctx.check_args(tool, args)
            args_node = compile_value(step.args)
            compiled[step.id] = CompiledStep(
                step.id,
                step,
                tool,
                args_node,
                for_each,
                tuple(deps),
                tool.spec.name,
                tool.spec.kind.value,
                for_each is None and step.retries == 0 and step.timeout_s is None,
            )
        else:
            compiled[step.id] = CompiledStep(step.id, step, _MISSING_TOOL, Literal_({}), for_each, tuple(deps))

    cycle = find_cycle({sid: cs.deps for sid, cs in compiled.items()})
    if cycle:
        first = cycle[0]
        out.add(
            "cycle",
            "dependency cycle: " + " -> ".join(cycle),
            step_id=first,
            field="depends_on",
            path=("steps", by_id[first][0]),
        )
    return compiled


class _MissingTool:
    """Placeholder bound to steps whose tool is unknown; such a plan never compiles."""

    spec: Any = None

    async def invoke(self, args: Mapping[str, Any]) -> Any:  # pragma: no cover - never runs
        raise AssertionError("unreachable")

    def check_value(self, arg: str, value: Any) -> str | None:  # pragma: no cover
        return None


_MISSING_TOOL: Tool = _MissingTool()


class _StepCheck:
    """Reference and argument checks for one step."""

    def __init__(
        self,
        out: _Collector,
        step: Step,
        base: PathKey,
        registry: ToolRegistry,
        by_id: Mapping[str, tuple[int, Step]],
        inputs: Mapping[str, InputSpec],
        all_ids: list[Any],
    ):
        self.out = out
        self.step = step
        self.base = base
        self.registry = registry
        self.by_id = by_id
        self.inputs = inputs
        self.all_ids = all_ids
        self.step_refs: list[str] = []
        self.item_schema: schemas.Schema | None = None
        self.item_root: schemas.Schema = {}

    def issue(self, code: str, message: str, field: str, path: PathKey, hint: str | None = None) -> None:
        self.out.add(code, message, step_id=self.step.id, field=field, path=path, hint=hint)

    def check_for_each(self, node: Node) -> None:
        path = (*self.base, "for_each")
        if isinstance(node, Literal_):
            if isinstance(node.value, list):
                return
            self.issue(
                "invalid_for_each",
                "for_each must be a reference to a list (e.g. step:parse.items) or a list",
                "for_each",
                path,
            )
            return
        self.check_refs(node, path, "for_each", raw=self.step.for_each, allow_item=False)
        refs = list(iter_refs(node))
        if len(refs) == 1 and refs[0][1]:
            schema, root = self.schema_of(refs[0][0])
            kinds = schemas.types_of(schema, root)
            if kinds is not None and "array" not in kinds:
                self.issue(
                    "invalid_for_each",
                    f"for_each must be a list, but {refs[0][0]} is {'/'.join(sorted(kinds))}",
                    "for_each",
                    path,
                )
            elif schema is not None:
                deref = schemas.deref(schema, root)
                items = deref.get("items")
                self.item_schema = items if isinstance(items, Mapping) else None
                self.item_root = root

    def output_schema(self, step_id: str) -> tuple[schemas.Schema | None, schemas.Schema]:
        """(schema of a step's output, the root for its $refs); a for_each step outputs a list. None: unknown."""
        target = self.by_id[step_id][1]
        if target.tool not in self.registry:
            return None, {}
        root: schemas.Schema = self.registry.get(target.tool).spec.output_schema
        base: schemas.Schema | None = root or None
        if target.for_each is not None and base is not None:
            base = {"type": "array", "items": base}
        return base, root

    def schema_of(self, ref: Ref) -> tuple[schemas.Schema | None, schemas.Schema]:
        """The schema of what a (valid) reference points at, or None when unknown."""
        if ref.kind == "step" and ref.name in self.by_id:
            base, root = self.output_schema(ref.name)
            sub, _ = schemas.at_path(base, ref.path, root)
            return sub, root
        if ref.kind == "input" and ref.name in self.inputs:
            kinds = _INPUT_TYPES[self.inputs[ref.name].type]
            if kinds is None or ref.path:
                return None, {}
            return {"type": sorted(kinds)[0] if len(kinds) == 1 else "number"}, {}
        if ref.kind == "item" and self.item_schema is not None:
            sub, _ = schemas.at_path(self.item_schema, ref.path, self.item_root)
            return sub, self.item_root
        return None, {}

    def check_refs(self, node: Node, path: PathKey, field: str, *, raw: Any, allow_item: bool = True) -> None:
        self._check_malformed(raw, path, field)
        for ref, _whole in iter_refs(node):
            self.check_ref(ref, path, field, allow_item=allow_item)

    def _check_malformed(self, raw: Any, path: PathKey, field: str) -> None:
        if isinstance(raw, str):
            if looks_like_ref(raw):
                self.issue(
                    "malformed_reference",
                    f"{raw!r} looks like a reference but is not one",
                    field,
                    path,
                    "write step:<id>, step:<id>.<field>[<n>], input:<name> or item:<field>",
                )
            for body in template_bodies(raw):
                if parse_ref(body) is None and looks_like_ref(body):
                    self.issue("malformed_reference", f"{{{{{body}}}}} is not a valid reference", field, path)
        elif isinstance(raw, Mapping):
            for k, v in raw.items():
                self._check_malformed(v, (*path, k), f"{field}.{k}")
        elif isinstance(raw, list):
            for i, v in enumerate(raw):
                self._check_malformed(v, (*path, i), f"{field}[{i}]")

    def check_ref(self, ref: Ref, path: PathKey, field: str, *, allow_item: bool = True) -> None:
        if ref.kind == "step":
            if ref.name == self.step.id:
                self.issue("self_dependency", f"{ref} refers to the step itself", field, path)
                return
            if ref.name not in self.by_id:
                hint = _did_you_mean(ref.name, list(self.by_id))
                self.issue("unknown_step", f"{ref} refers to unknown step {ref.name!r}", field, path, hint)
                return
            self.step_refs.append(ref.name)
            self._check_path(ref, path, field)
        elif ref.kind == "input":
            if ref.name not in self.inputs:
                declared = ", ".join(sorted(self.inputs)) or "none"
                self.issue(
                    "unknown_input",
                    f"{ref} refers to undeclared input {ref.name!r} (declared: {declared})",
                    field,
                    path,
                    f'declare it under "inputs": {{"{ref.name}": {{"type": "string"}}}}',
                )
        elif not allow_item or self.step.for_each is None:
            self.issue("item_outside_for_each", f"{ref} is only meaningful in a step with for_each", field, path)
        else:
            self._check_path(ref, path, field)

    def _check_path(self, ref: Ref, path: PathKey, field: str) -> None:
        if ref.kind == "step":
            base, root = self.output_schema(ref.name)
            is_list = self.by_id[ref.name][1].for_each is not None
            origin = f"step:{ref.name}" + (" (a for_each step: a list)" if is_list else "")
        else:
            if self.item_schema is None:
                return
            root, base, origin = self.item_root, self.item_schema, "item"
        for cut in range(1, len(ref.path) + 1):
            _, error = schemas.at_path(base, ref.path[:cut], root)
            if error:
                self.issue("unknown_field", f"{ref}: {origin}{format_path(ref.path[: cut - 1])} {error}", field, path)
                return

    def check_args(self, tool: Tool, args: Mapping[str, Node]) -> None:
        schema = tool.spec.input_schema
        props: Mapping[str, Any] = schema.get("properties", {}) or {}
        required = set(schema.get("required", []) or [])
        closed = schema.get("additionalProperties") is False
        base = (*self.base, "args")
        for name in sorted(required - set(args)):
            desc = props.get(name, {}).get("description")
            self.issue(
                "missing_arg",
                f"missing required argument {name!r} for tool {tool.spec.name!r}",
                f"args.{name}",
                base,
                desc,
            )
        for name, node in args.items():
            path = (*base, name)
            if name not in props:
                if closed:
                    hint = _did_you_mean(name, list(props)) or f"arguments: {', '.join(sorted(props)) or 'none'}"
                    self.issue(
                        "unknown_arg", f"tool {tool.spec.name!r} has no argument {name!r}", f"args.{name}", path, hint
                    )
                continue
            if isinstance(node, Literal_):
                error = tool.check_value(name, node.value)
                if error:
                    self.issue("invalid_arg", f"argument {name!r}: {error}", f"args.{name}", path)
                continue
            expected = schemas.types_of(props[name], schema)
            if isinstance(node, RefNode):
                ref_schema, ref_root = self.schema_of(node.ref)
                got = schemas.types_of(ref_schema, ref_root)
                if not schemas.compatible(got, expected):
                    self.issue(
                        "invalid_arg",
                        f"argument {name!r} expects {'/'.join(sorted(expected or []))}, "
                        f"but {node.ref} is {'/'.join(sorted(got or []))}",
                        f"args.{name}",
                        path,
                    )
            elif isinstance(node, TemplateNode) and not schemas.compatible(frozenset({"string"}), expected):
                self.issue(
                    "invalid_arg",
                    f"argument {name!r} expects {'/'.join(sorted(expected or []))}, but a template gives text",
                    f"args.{name}",
                    path,
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
    """Read, parse and validate a plan file (errors carry the file, line and column).

    A relative path among its inputs' defaults that names something next to the plan file is made absolute
    against the plan file's folder, whatever the working directory (see :mod:`orchestrator.files`).
    """
    from orchestrator.plan.defaults import resolve_relative_defaults

    data, source = read_plan_file(Path(path), limits=limits)
    data = resolve_relative_defaults(data, Path(path).resolve().parent)
    return validate_plan(data, registry, source=source, limits=limits)
