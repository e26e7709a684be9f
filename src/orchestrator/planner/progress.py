"""Show a plan to people as a tree (tool, worker kind, dependencies).

The live step table, which grows as a streamed plan arrives, is :class:`orchestrator.observability.StepTable`.
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from orchestrator.plan.model import Plan
from orchestrator.plan.validate import CompiledPlan
from orchestrator.planner.replan import dependencies
from orchestrator.registry import ToolRegistry


def plan_tree(plan: Plan | CompiledPlan, registry: ToolRegistry | None = None) -> Tree:
    """The plan as a tree: inputs, then each step (tool, worker kind, dependencies), then the output."""
    compiled = plan if isinstance(plan, CompiledPlan) else None
    model = plan.plan if isinstance(plan, CompiledPlan) else plan
    tree = Tree(Text(model.goal or "plan", style="bold"))
    if model.inputs:
        inputs = tree.add(Text("inputs", style="cyan"))
        for name, spec in model.inputs.items():
            default = f" = {spec.default!r}" if spec.default is not None else ""
            inputs.add(f"{name}: {spec.type}{default}")
    steps = tree.add(Text(f"steps ({len(model.steps)})", style="cyan"))
    for step in model.steps:
        kind = ""
        if compiled is not None:
            kind = compiled.steps[step.id].kind
        elif registry is not None and step.tool in registry:
            kind = registry.get(step.tool).spec.kind.value
        deps = list(compiled.steps[step.id].deps) if compiled is not None else dependencies(step)
        label = Text.assemble(
            (step.id, "bold"),
            "  ",
            (step.tool, "green"),
            (f"  [{kind}]" if kind else "", "yellow"),
            (f"  after {', '.join(deps)}" if deps else "  (starts at once)", "dim"),
        )
        node = steps.add(label)
        if step.for_each is not None:
            node.add(Text(f"for each element of {step.for_each}", style="dim"))
    if model.output is not None:
        tree.add(Text(f"output: {model.output}", style="cyan"))
    return tree


__all__ = ["plan_tree"]
