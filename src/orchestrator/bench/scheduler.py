"""Scheduler overhead: our executor against a minimal plain-asyncio ready-queue scheduler, in one process.

Three DAG shapes (a 1000-step chain; fan-out 1 -> 1000 -> 1; 20 layers x 50 steps, each depending on
1-3 steps of the layer above, fixed seed), each with no-op async steps and with 10 ms sleeping steps.
For each: makespan, the ideal (critical path x step time), overhead per step, and the floor's figures.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from orchestrator.executor.engine import run_compiled
from orchestrator.plan.graph import critical_path
from orchestrator.plan.validate import CompiledPlan, validate_plan
from orchestrator.registry import ToolRegistry

Deps = dict[str, list[str]]


class BenchRow(BaseModel):
    dag: str
    step: str
    steps: int
    makespan_s: float
    ideal_s: float
    floor_makespan_s: float
    overhead_us_per_step: float
    floor_overhead_us_per_step: float
    overhead_ratio: float
    makespan_ratio: float


def chain(n: int = 1000) -> Deps:
    return {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(n)}


def fanout(width: int = 1000) -> Deps:
    deps: Deps = {"source": []}
    deps.update({f"w{i}": ["source"] for i in range(width)})
    deps["sink"] = [f"w{i}" for i in range(width)]
    return deps


def layered(layers: int = 20, width: int = 50, seed: int = 7) -> Deps:
    rng = random.Random(seed)
    deps: Deps = {f"l0_{j}": [] for j in range(width)}
    for layer in range(1, layers):
        for j in range(width):
            parents = rng.sample(range(width), rng.randint(1, 3))
            deps[f"l{layer}_{j}"] = [f"l{layer - 1}_{p}" for p in parents]
    return deps


DAGS: dict[str, Callable[[], Deps]] = {"chain": chain, "fanout": fanout, "layered": layered}
STEP_SECONDS = {"noop": 0.0, "sleep10ms": 0.010}


def bench_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    async def noop() -> None:
        """Do nothing."""

    @registry.tool
    async def sleep10ms() -> None:
        """Sleep for 10 ms."""
        await asyncio.sleep(0.010)

    return registry


def as_plan(deps: Deps, tool: str, registry: ToolRegistry) -> CompiledPlan:
    steps = [{"id": sid, "tool": tool, "depends_on": ds} for sid, ds in deps.items()]
    return validate_plan({"goal": "bench", "steps": steps}, registry)


async def floor_run(deps: Deps, step: Callable[[], Awaitable[Any]]) -> float:
    """The floor: a minimal ready-queue scheduler with nothing but dependency counting."""
    loop = asyncio.get_running_loop()
    remaining = {sid: len(ds) for sid, ds in deps.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in deps}
    for sid, ds in deps.items():
        for d in ds:
            dependents[d].append(sid)
    left = len(deps)
    done = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()

    async def runner(sid: str) -> None:
        nonlocal left
        await step()
        for child in dependents[sid]:
            remaining[child] -= 1
            if remaining[child] == 0:
                launch(child)
        left -= 1
        if left == 0:
            done.set_result(None)

    def launch(sid: str) -> None:
        task = loop.create_task(runner(sid))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    t0 = time.perf_counter()
    for sid, count in remaining.items():
        if count == 0:
            launch(sid)
    await done
    return time.perf_counter() - t0


async def ours_run(compiled: CompiledPlan) -> float:
    t0 = time.perf_counter()
    result, _ = await run_compiled(compiled, {})
    elapsed = time.perf_counter() - t0
    if not result.ok:
        raise RuntimeError(f"benchmark run failed: {result.error}")
    return elapsed


async def _noop() -> None:
    return None


async def _sleep10ms() -> None:
    await asyncio.sleep(0.010)


async def measure(dag: str, step: str, *, repeats: int = 3) -> BenchRow:
    """Best-of-`repeats` makespans for both schedulers, alternating to share the machine's noise."""
    deps = DAGS[dag]()
    registry = bench_registry()
    compiled = as_plan(deps, step, registry)
    step_fn = _noop if step == "noop" else _sleep10ms
    n = len(deps)
    ideal = len(critical_path(deps)) * STEP_SECONDS[step]
    ours: list[float] = []
    floor: list[float] = []
    await ours_run(compiled)  # warm-up: first-call costs (imports, caches) are not scheduler overhead
    await floor_run(deps, step_fn)
    for _ in range(repeats):
        gc.collect()
        floor.append(await floor_run(deps, step_fn))
        gc.collect()
        ours.append(await ours_run(compiled))
    makespan, floor_makespan = min(ours), min(floor)
    overhead = (makespan - ideal) / n * 1e6
    floor_overhead = (floor_makespan - ideal) / n * 1e6
    return BenchRow(
        dag=dag,
        step=step,
        steps=n,
        makespan_s=makespan,
        ideal_s=ideal,
        floor_makespan_s=floor_makespan,
        overhead_us_per_step=overhead,
        floor_overhead_us_per_step=floor_overhead,
        overhead_ratio=overhead / floor_overhead if floor_overhead > 0 else float("inf"),
        makespan_ratio=makespan / floor_makespan,
    )


async def run_all(*, repeats: int = 3, dags: list[str] | None = None, steps: list[str] | None = None) -> list[BenchRow]:
    rows: list[BenchRow] = []
    for step in steps or list(STEP_SECONDS):
        for dag in dags or list(DAGS):
            # A 1000-step chain of 10 ms steps takes over 10 s a run: one repeat is enough there. The other
            # 10 ms DAGs finish in tens of milliseconds, where a noisy machine shows most: take more runs.
            if step == "sleep10ms":
                reps = 1 if dag == "chain" else 3 * repeats
            else:
                reps = repeats
            rows.append(await measure(dag, step, repeats=reps))
    return rows


def within_target(row: BenchRow) -> bool:
    """Targets: no-op steps cost at most 2x the floor's overhead; 10 ms steps keep makespan within 5%."""
    if row.step == "noop":
        return row.overhead_ratio <= 2.0
    return row.makespan_ratio <= 1.05
