"""Scheduler overhead: our executor against a minimal plain-asyncio ready-queue scheduler, in one process.

Three DAG shapes (a 1000-step chain; fan-out 1 -> 1000 -> 1; 20 layers x 50 steps, each depending on
1-3 steps of the layer above, fixed seed).

- Scheduler rows: no-op async steps and 10 ms sleeping steps, wired by ``depends_on``, the plan compiled
  outside the timing. Makespan, the ideal (critical path x step time), overhead per step, the floor's.
- Real-plan rows: what users and planners write. Each step calls a typed async tool with a literal and
  the ``step:`` references of its dependencies' outputs, through the public ``execute_plan(plan_dict)``,
  validation included. The floor is a plain asyncio ready-queue that passes the same data to the same
  function. Time per step and peak memory per step (tracemalloc), ours and the floor's; validation alone
  (as execute_plan does it, and the full validator's); whether execute_plan took its fast path.
- Scale rows (``--scale``): layered plans of 1,000, 10,000 and 50,000 steps, validation and execution
  timed apart (each as execute_plan does it: the fast path when the plan takes it), to show both stay linear.

Every figure is the median over runs (not the best run), ours and the floor's runs alternating, so both
share the machine's noise.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from typing_extensions import TypedDict

from orchestrator.executor import execute_plan
from orchestrator.executor.engine import run_compiled
from orchestrator.executor.fast import run_fast
from orchestrator.executor.fast import stats as fast_stats
from orchestrator.executor.policy import ConcurrencyLimits
from orchestrator.plan.fast import FastPlan, compile_fast
from orchestrator.plan.graph import critical_path
from orchestrator.plan.validate import CompiledPlan, validate_plan
from orchestrator.registry import ToolRegistry

REAL_PLAN_TARGET = 2.0
"""Real plans: time per step at most this many times the floor's."""
MEMORY_TARGET_KIB = 2.0
"""Real plans: peak memory per step, KiB."""
LINEAR_TARGET = 2.0
"""Scale rows: time per step at 50,000 steps at most this many times the time per step at 1,000."""

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
    target: str = ""
    met: bool = False


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
    """Median makespans over `repeats` runs of both schedulers, alternating to share the machine's noise."""
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
    makespan, floor_makespan = statistics.median(ours), statistics.median(floor)
    overhead = (makespan - ideal) / n * 1e6
    floor_overhead = (floor_makespan - ideal) / n * 1e6
    row = BenchRow(
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
        target="overhead <= 2x the floor's" if step == "noop" else "makespan <= 1.05x the floor's",
    )
    row.met = within_target(row)
    return row


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


# --- real plans -------------------------------------------------------------------------------------------


class Reading(TypedDict):
    """What the real-plan tool returns (a typed output: references to `.value` are checked against it)."""

    value: int
    n: int


async def combine(n: int, values: list[int]) -> Reading:
    """Add up the values of the steps this one depends on, plus its own number."""
    return {"value": sum(values) + n, "n": n}


def real_registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.tool(combine)
    return registry


def real_plan(deps: Deps) -> dict[str, Any]:
    """A plan as users and planners write it: a literal and one `step:` reference per dependency."""
    steps = [
        {"id": sid, "tool": "combine", "args": {"n": i, "values": [f"step:{d}.value" for d in ds]}}
        for i, (sid, ds) in enumerate(deps.items())
    ]
    return {"goal": "bench: real plan", "steps": steps}


async def real_floor_run(deps: Deps) -> tuple[float, dict[str, Any]]:
    """The floor for real plans: a plain ready-queue that passes the same data to the same function."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    remaining = {sid: len(ds) for sid, ds in deps.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in deps}
    for sid, ds in deps.items():
        for d in ds:
            dependents[d].append(sid)
    number = {sid: i for i, sid in enumerate(deps)}
    outputs: dict[str, Any] = {}
    left = len(deps)
    done = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()

    async def runner(sid: str) -> None:
        nonlocal left
        outputs[sid] = await combine(number[sid], [outputs[d]["value"] for d in deps[sid]])
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

    for sid, count in remaining.items():
        if count == 0:
            launch(sid)
    await done
    return time.perf_counter() - t0, outputs


async def real_run(plan: dict[str, Any], registry: ToolRegistry) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    result = await execute_plan(plan, registry=registry)
    elapsed = time.perf_counter() - t0
    if not result.ok:
        raise RuntimeError(f"benchmark run failed: {result.error or result.failed_steps()}")
    return elapsed, {sid: step.output for sid, step in result.steps.items()}


async def _peak(run: Callable[[], Awaitable[Any]]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        await run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class RealPlanRow(BaseModel):
    dag: str
    steps: int
    us_per_step: float
    floor_us_per_step: float
    ratio: float
    cpu_us_per_step: float
    """CPU time of this process per step (time.process_time): what the machine's other load hides least."""
    floor_cpu_us_per_step: float
    cpu_ratio: float
    validate_us_per_step: float
    """Validation as execute_plan does it (the fast path's when the plan takes it)."""
    full_validate_us_per_step: float
    """The full validator's time on the same plan (validate_plan: what `orchestrator validate` does)."""
    fast_path: bool
    """Whether execute_plan ran the plan on its fast path (orchestrator.executor.fast)."""
    kib_per_step: float
    floor_kib_per_step: float
    target: str = f"time per step <= {REAL_PLAN_TARGET:g}x the floor's; memory <= {MEMORY_TARGET_KIB:g} KiB/step"
    time_met: bool = False
    memory_met: bool = False
    met: bool = False


async def measure_real(dag: str, *, repeats: int = 5) -> RealPlanRow:
    """Median time per step of `execute_plan(plan_dict)` (validation included) against the floor."""
    deps = DAGS[dag]()
    registry = real_registry()
    plan = real_plan(deps)
    n = len(deps)
    _, ours_out = await real_run(plan, registry)  # warm-up, and a check that both compute the same
    _, floor_out = await real_floor_run(deps)
    if ours_out != floor_out:
        raise RuntimeError("the real-plan run and its floor disagree")
    ours: list[float] = []
    floor: list[float] = []
    ours_cpu: list[float] = []
    floor_cpu: list[float] = []
    validation: list[float] = []
    full_validation: list[float] = []
    fast_runs = fast_stats.runs
    for _ in range(repeats):
        gc.collect()
        cpu = time.process_time()
        floor.append((await real_floor_run(deps))[0])
        floor_cpu.append(time.process_time() - cpu)
        gc.collect()
        cpu = time.process_time()
        ours.append((await real_run(plan, registry))[0])
        ours_cpu.append(time.process_time() - cpu)
        gc.collect()
        t0 = time.perf_counter()
        if _compile_fast(plan, registry) is None:  # what execute_plan does first
            validate_plan(plan, registry)
        validation.append(time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        validate_plan(plan, registry)
        full_validation.append(time.perf_counter() - t0)
    fast_path = fast_stats.runs == fast_runs + repeats  # every timed run took it
    peak = await _peak(lambda: real_run(plan, registry))
    floor_peak = await _peak(lambda: real_floor_run(deps))
    per_step, floor_per_step = statistics.median(ours) / n * 1e6, statistics.median(floor) / n * 1e6
    cpu_per_step, floor_cpu_per_step = statistics.median(ours_cpu) / n * 1e6, statistics.median(floor_cpu) / n * 1e6
    row = RealPlanRow(
        dag=dag,
        steps=n,
        us_per_step=per_step,
        floor_us_per_step=floor_per_step,
        ratio=per_step / floor_per_step,
        cpu_us_per_step=cpu_per_step,
        floor_cpu_us_per_step=floor_cpu_per_step,
        cpu_ratio=cpu_per_step / floor_cpu_per_step if floor_cpu_per_step > 0 else float("inf"),
        validate_us_per_step=statistics.median(validation) / n * 1e6,
        full_validate_us_per_step=statistics.median(full_validation) / n * 1e6,
        fast_path=fast_path,
        kib_per_step=peak / n / 1024,
        floor_kib_per_step=floor_peak / n / 1024,
    )
    row.time_met = row.ratio <= REAL_PLAN_TARGET
    row.memory_met = row.kib_per_step <= MEMORY_TARGET_KIB
    row.met = row.time_met and row.memory_met
    return row


def _compile_fast(plan: dict[str, Any], registry: ToolRegistry) -> FastPlan | None:
    limits = ConcurrencyLimits()
    return compile_fast(plan, registry, accept=lambda tool: limits.unlimited(tool.spec))


class ScaleRow(BaseModel):
    steps: int
    validate_us_per_step: float
    execute_us_per_step: float


async def measure_scale(sizes: tuple[int, ...] = (1_000, 10_000, 50_000), *, repeats: int = 3) -> list[ScaleRow]:
    """Validation and execution time per step of layered real plans (50 wide) of growing size."""
    registry = real_registry()
    rows: list[ScaleRow] = []
    for size in sizes:
        plan = real_plan(layered(layers=max(1, size // 50), width=50))
        n = len(plan["steps"])
        validating: list[float] = []
        executing: list[float] = []
        for _ in range(repeats):
            # What execute_plan does: the fast path, or (should the plan not take it) the full one.
            gc.collect()
            t0 = time.perf_counter()
            fast = _compile_fast(plan, registry)
            compiled = validate_plan(plan, registry) if fast is None else None
            validating.append(time.perf_counter() - t0)
            gc.collect()
            t0 = time.perf_counter()
            if fast is not None:
                result = await run_fast(fast, {}, "bench")
            else:
                assert compiled is not None
                result, _ = await run_compiled(compiled, {}, keep_events=False)
            executing.append(time.perf_counter() - t0)
            if not result.ok:
                raise RuntimeError("benchmark run failed")
            del compiled, fast, result
        rows.append(
            ScaleRow(
                steps=n,
                validate_us_per_step=statistics.median(validating) / n * 1e6,
                execute_us_per_step=statistics.median(executing) / n * 1e6,
            )
        )
    return rows


def linear(rows: list[ScaleRow]) -> bool:
    """Whether the largest plan costs at most LINEAR_TARGET times the smallest one's, per step."""
    first, last = rows[0], rows[-1]
    return (
        last.validate_us_per_step <= LINEAR_TARGET * first.validate_us_per_step
        and last.execute_us_per_step <= LINEAR_TARGET * first.execute_us_per_step
    )


async def run_real(*, repeats: int = 5, dags: list[str] | None = None) -> list[RealPlanRow]:
    return [await measure_real(dag, repeats=repeats) for dag in dags or list(DAGS)]
