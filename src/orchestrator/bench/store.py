"""What recording into the run store costs per step: the same plans run with and without the store, in one process.

Rows: a 300-step chain and a 1 -> 300 -> 1 fan-out of no-op steps (the store's cost with nothing to hide it),
and the receipt pipeline over receipt texts (a real plan: OCR pass-through, parse, categorize, totals, report,
with their outputs recorded). Each figure is the best of `repeats` runs; the overhead per step is the
difference of the two makespans divided by the number of steps, and the ratio is store / no store.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.bench.scheduler import as_plan, bench_registry, chain, fanout
from orchestrator.executor import run_compiled
from orchestrator.executor.hooks import use_step_hook
from orchestrator.plan.validate import CompiledPlan, validate_plan
from orchestrator.store import RunStore, StoreRun
from orchestrator.toolbox import default_registry


class StoreRow(BaseModel):
    """One plan, timed with and without the store."""

    plan: str
    steps: int
    runs: int
    no_store_s: float
    store_s: float
    overhead_us_per_step: float
    ratio: float


async def _timed(compiled: CompiledPlan, inputs: list[dict[str, Any]], store: RunStore | None, sync: str) -> float:
    started = time.perf_counter()
    for values in inputs:
        if store is None:
            await run_compiled(compiled, values)
            continue
        run = StoreRun.start(store, kind="run", request=f"bench {sync}")
        with use_step_hook(run.recorder()):
            await run_compiled(compiled, values)
    return time.perf_counter() - started


async def _row(name: str, compiled: CompiledPlan, inputs: list[dict[str, Any]], repeats: int, sync: str) -> StoreRow:
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore.open(Path(folder), sync="full" if sync == "full" else "normal")
        try:
            await _timed(compiled, inputs[:1], store, sync)  # warm up both paths
            await _timed(compiled, inputs[:1], None, sync)
            plain, kept = float("inf"), float("inf")
            for _ in range(repeats):  # interleaved, so that a busy moment of the machine hits both alike
                plain = min(plain, await _timed(compiled, inputs, None, sync))
                kept = min(kept, await _timed(compiled, inputs, store, sync))
        finally:
            store.close()
    steps = len(compiled.steps) * len(inputs)
    return StoreRow(
        plan=name,
        steps=steps,
        runs=len(inputs),
        no_store_s=round(plain, 5),
        store_s=round(kept, 5),
        overhead_us_per_step=round((kept - plain) / steps * 1e6, 1),
        ratio=round(kept / plain, 2) if plain > 0 else 0.0,
    )


async def measure_store(receipts: list[Path], *, repeats: int = 3, sync: str = "normal") -> list[StoreRow]:
    """The rows described in the module docstring (`receipts`: text files for the pipeline row)."""
    registry = bench_registry()
    rows = [
        await _row("chain 300 no-op", as_plan(chain(300), "noop", registry), [{}], repeats, sync),
        await _row("fan-out 1-300-1 no-op", as_plan(fanout(300), "noop", registry), [{}], repeats, sync),
    ]
    if receipts:
        from orchestrator.bench.planner import RECEIPT_PLAN

        compiled = validate_plan(RECEIPT_PLAN, default_registry())
        inputs = [{"image_path": str(p)} for p in receipts]
        rows.append(await _row(f"receipt pipeline x {len(inputs)}", compiled, inputs, repeats, sync))
    return rows


__all__ = ["StoreRow", "measure_store"]
