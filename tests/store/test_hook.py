"""The executor's step hook with the store's recorder: recording, step-level resume, the tool cache, store failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import StoreError
from orchestrator.executor import run_compiled
from orchestrator.executor.hooks import use_step_hook
from orchestrator.plan.validate import validate_plan
from orchestrator.registry import ToolRegistry
from orchestrator.store import RunStore, StepRecorder, StoreRun

pytestmark = pytest.mark.anyio


def counting_registry(calls: list[str]) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def work(name: str, parts: list[Any] | None = None) -> dict[str, Any]:
        """Impure: counts its calls."""
        calls.append(name)
        return {"name": name, "parts": parts or []}

    @registry.tool(read_only=True, destructive=False, idempotent=True, open_world=False)
    def pure(x: int) -> int:
        """Deterministic: a result depends on x alone."""
        calls.append(f"pure:{x}")
        return x * 2

    return registry


def chain_plan(n: int) -> dict[str, Any]:
    def link(i: int) -> dict[str, Any]:
        parts = [f"step:s{i - 1}"] if i else []
        return {"id": f"s{i}", "tool": "work", "args": {"name": f"s{i}", "parts": parts}}

    steps = [link(i) for i in range(n)]
    return {"goal": "chain", "steps": steps, "output": f"step:s{n - 1}"}


async def test_every_settled_step_is_recorded_with_its_output_and_events(tmp_path: Path) -> None:
    calls: list[str] = []
    compiled = validate_plan(chain_plan(3), counting_registry(calls))
    with RunStore.open(tmp_path) as store:
        run = StoreRun.start(store, kind="run", request="chain", plan_data=chain_plan(3))
        with use_step_hook(run.recorder()):
            result, _ = await run_compiled(compiled, {})
        assert result.ok
        done = store.finished_steps(run.run_id)
        assert set(done) == {"s0", "s1", "s2"} and done["s2"] == result.output
        types = [e.type for e in store.events(run.run_id)]
        assert types.count("step_started") == 3 and types.count("step_finished") == 3 and types[-1] == "run_finished"


class FailingStore(RunStore):
    """A store whose disk fills up after `room` step writes (what a full disk does to SQLite: an error)."""

    room = 1

    def record_step(self, step: Any, events: Any = (), *, cache: bool = False) -> None:
        if step.status in ("succeeded", "failed"):
            if self.room <= 0:
                raise StoreError("run store x: the disk is full (while recording step)")
            self.room -= 1
        super().record_step(step, events, cache=cache)


async def test_a_store_that_cannot_record_stops_the_run_and_what_it_kept_resumes(tmp_path: Path) -> None:
    calls: list[str] = []
    compiled = validate_plan(chain_plan(4), counting_registry(calls))
    store = FailingStore.open(tmp_path)
    run = StoreRun.start(store, kind="run", request="chain", plan_data=chain_plan(4))
    hook = run.recorder()
    with use_step_hook(hook):
        result, _ = await run_compiled(compiled, {})
    assert result.status == "failed" and "run store" in (result.error or "")
    assert isinstance(hook.error, StoreError)
    assert list(store.finished_steps(run.run_id)) == ["s0"]  # s1 ran but could not be kept: it runs again
    store.room = 100
    again = StoreRun.resume(store, store.get_run(run.run_id))  # type: ignore[arg-type]
    with use_step_hook(again.recorder()):
        result, _ = await run_compiled(compiled, {}, completed=again.completed.get(""))
    assert result.ok and result.steps["s0"].modes == ("reused",)
    assert calls == ["s0", "s1", "s1", "s2", "s3"]
    store.close()


async def test_deterministic_tools_are_reused_across_runs_and_others_are_not(tmp_path: Path) -> None:
    calls: list[str] = []
    registry = counting_registry(calls)
    plan = {"goal": "g", "steps": [{"id": "p", "tool": "pure", "args": {"x": 21}},
                                   {"id": "w", "tool": "work", "args": {"name": "w"}}], "output": "step:p"}  # fmt: skip
    compiled = validate_plan(plan, registry)
    with RunStore.open(tmp_path) as store:
        for _ in range(2):
            run = StoreRun.start(store, kind="run", request="g", plan_data=plan)
            with use_step_hook(run.recorder()):
                result, _ = await run_compiled(compiled, {})
            assert result.output == 42
        assert calls == ["pure:21", "w", "w"]
        assert result.steps["p"].modes == ("cached",)
        off = StoreRun.start(store, kind="run", request="g", plan_data=plan, tool_cache=False)
        with use_step_hook(off.recorder()):
            await run_compiled(compiled, {})
        assert calls.count("pure:21") == 2


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    n = draw(st.integers(2, 12))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        steps.append({"id": f"s{i}", "tool": "work", "args": {"name": f"s{i}", "parts": [f"step:s{d}" for d in deps]}})
    return {"goal": "dag", "steps": steps, "output": f"step:s{n - 1}"}, draw(st.integers(0, n))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=dags())
async def test_a_run_stopped_anywhere_resumes_to_the_same_output_with_no_finished_step_run_twice(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[dict[str, Any], int]
) -> None:
    plan, room = case
    clean_calls: list[str] = []
    clean, _ = await run_compiled(validate_plan(plan, counting_registry(clean_calls)), {})
    calls: list[str] = []
    compiled = validate_plan(plan, counting_registry(calls))
    store = FailingStore.open(tmp_path_factory.mktemp("store"))
    store.room = room
    run = StoreRun.start(store, kind="run", request="dag", plan_data=plan)
    with use_step_hook(run.recorder()):
        await run_compiled(compiled, {})
    kept = set(store.finished_steps(run.run_id))
    store.room = 10**6
    again = StoreRun.resume(store, store.get_run(run.run_id))  # type: ignore[arg-type]
    with use_step_hook(again.recorder()):
        result, _ = await run_compiled(compiled, {}, completed=again.completed.get(""))
    assert result.ok and result.output == clean.output
    for sid in kept:  # a step recorded as finished never runs again
        assert calls.count(sid) == 1
    assert sorted(set(calls)) == sorted(clean_calls)
    store.close()


def test_the_recorder_is_a_step_hook() -> None:
    from orchestrator.executor.hooks import StepHook

    hook: StepHook = StepRecorder.__new__(StepRecorder)
    assert callable(hook.lookup) and callable(hook.record) and callable(hook.on_event)


async def test_a_cached_tool_that_reads_a_file_runs_again_once_the_file_changes(tmp_path: Path) -> None:
    reads: list[str] = []
    registry = ToolRegistry()

    @registry.tool(read_only=True, destructive=False, idempotent=True, open_world=False)
    def read(path: str) -> str:
        """Reads a file: its result depends on the file as well as the argument."""
        reads.append(path)
        return Path(path).read_text(encoding="utf-8")

    note = tmp_path / "note.txt"
    note.write_text("one", encoding="utf-8")
    plan = {"goal": "g", "steps": [{"id": "r", "tool": "read", "args": {"path": str(note)}}], "output": "step:r"}
    compiled = validate_plan(plan, registry)
    outputs = []
    with RunStore.open(tmp_path / "store") as store:
        for text in ("one", None, "two!"):  # None: the file is left as it is
            if text is not None:
                note.write_text(text, encoding="utf-8")
            run = StoreRun.start(store, kind="run", request="g", plan_data=plan)
            with use_step_hook(run.recorder()):
                result, _ = await run_compiled(compiled, {})
            outputs.append(result.output)
    assert outputs == ["one", "one", "two!"] and len(reads) == 2
