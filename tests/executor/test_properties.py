"""Property tests on random DAGs: every step runs exactly once, after all of its dependencies."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.executor import execute_plan
from orchestrator.registry import ToolRegistry


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, list[str]], set[str]]:
    n = draw(st.integers(min_value=1, max_value=30))
    deps: dict[str, list[str]] = {}
    for i in range(n):
        parents = draw(st.lists(st.integers(min_value=0, max_value=max(i - 1, 0)), max_size=min(i, 4), unique=True))
        deps[f"s{i}"] = [f"s{p}" for p in parents] if i else []
    failing = draw(st.sets(st.sampled_from(sorted(deps)), max_size=3))
    return deps, failing


def run(deps: dict[str, list[str]], failing: set[str], seed: int) -> tuple[list[tuple[str, str]], dict[str, str]]:
    log: list[tuple[str, str]] = []
    reg = ToolRegistry()
    rng = random.Random(seed)

    @reg.tool
    async def work(name: str) -> str:
        """Log start and end, yielding a random number of times in between."""
        log.append(("start", name))
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        log.append(("end", name))
        if name in failing:
            raise RuntimeError("planned failure")
        return name

    # Shuffle the step order in the plan: the schedule must not depend on it.
    order = list(deps)
    rng.shuffle(order)
    plan = {"steps": [{"id": s, "tool": "work", "args": {"name": s}, "depends_on": deps[s]} for s in order]}
    result = asyncio.run(execute_plan(plan, registry=reg))
    return log, {sid: step.status for sid, step in result.steps.items()}


def blocked(step: str, deps: dict[str, list[str]], failing: set[str]) -> bool:
    return any(d in failing or blocked(d, deps, failing) for d in deps[step])


@settings(max_examples=150, deadline=None)
@given(dag=dags(), seed=st.integers(0, 2**16))
def test_each_step_runs_once_after_all_its_dependencies_and_failures_skip_only_descendants(
    dag: tuple[dict[str, list[str]], set[str]], seed: int
) -> None:
    deps, failing = dag
    log, status = run(deps, failing, seed)
    starts = [name for kind, name in log if kind == "start"]
    assert len(starts) == len(set(starts)), "a step ran twice"
    ended_at = {name: i for i, (kind, name) in enumerate(log) if kind == "end"}
    for i, (kind, name) in enumerate(log):
        if kind == "start":
            assert all(ended_at[d] < i for d in deps[name]), f"{name} started before a dependency ended"
    for step in deps:
        if blocked(step, deps, failing):
            assert status[step] == "skipped" and step not in starts
        elif step in failing:
            assert status[step] == "failed"
        else:
            assert status[step] == "succeeded" and step in starts
