"""--executor ray against a real local Ray instance (one per session, see conftest): same results as in process,
a killed worker loses nothing, resources are honoured, cancelling leaves no actor behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from orchestrator.batch import DocumentResult, DocumentSource, run_batch
from orchestrator.errors import ConfigurationError
from orchestrator.executor.engine import run_compiled
from orchestrator.plan.validate import load_plan, validate_plan
from orchestrator.toolbox import default_registry

TEST_RESOURCE = "orchestrator_test_slot"  # made available by the ray_session fixture (conftest)

pytest.importorskip("ray")
pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
SROIE = REPO.parent / "shared/data/receipts/sroie"
HYBRID = REPO / "examples/example_plan_hybrid.json"


def receipts() -> str:
    """The 100 SROIE texts when the shared data is there, else the example receipts' texts."""
    return str(SROIE / "*.txt") if SROIE.is_dir() else str(REPO / "examples/receipts/*.txt")


def comparable(record: DocumentResult) -> dict[str, Any]:
    """Everything a document's line says except where and how long it ran."""
    return record.model_dump(mode="json", exclude={"duration_s", "worker"})


async def in_process(source: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    compiled = load_plan(HYBRID, default_registry())
    await run_batch(
        compiled, DocumentSource(source), "image_path", on_document=lambda r: rows.update({r.document: comparable(r)})
    )
    return rows


async def test_ray_batch_gives_per_document_exactly_the_in_process_results(ray_session: Any) -> None:
    from orchestrator.cluster import RayExecutor

    expected = await in_process(receipts())
    got: dict[str, dict[str, Any]] = {}
    workers: set[str] = set()

    def keep(record: DocumentResult) -> None:
        assert record.document not in got, f"{record.document} written twice"
        got[record.document] = comparable(record)
        workers.add(str(record.worker))

    async with RayExecutor(workers=2) as cluster:
        compiled = load_plan(HYBRID, default_registry())
        summary = await run_batch(
            compiled, DocumentSource(receipts()), "image_path", on_document=keep, executor=cluster
        )
        assert len(cluster.worker_peaks) == 2 and all(peak > 0 for peak in cluster.worker_peaks.values())
    assert summary.failed == 0 and summary.succeeded == len(expected) >= 10
    assert got == expected
    assert len(workers) == 2 and f"{os.uname().nodename}:{os.getpid()}" not in workers  # both actors, not here


async def test_a_worker_killed_mid_batch_loses_nothing(ray_session: Any) -> None:
    from orchestrator.cluster import RayExecutor

    expected = await in_process(receipts())
    got: dict[str, dict[str, Any]] = {}
    killed: list[int] = []

    def keep(record: DocumentResult) -> None:
        assert record.document not in got, f"{record.document} written twice"
        got[record.document] = comparable(record)
        if not killed:  # the first result's worker still has documents in flight: kill it hard
            pid = int(str(record.worker).rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    async with RayExecutor(workers=2, document_retries=2) as cluster:
        compiled = load_plan(HYBRID, default_registry())
        summary = await run_batch(
            compiled, DocumentSource(receipts()), "image_path", concurrency=4, on_document=keep, executor=cluster
        )
    assert killed and summary.retried >= 1  # documents were in flight on the killed worker, and ran again
    assert summary.failed == 0 and got == expected


async def test_a_step_with_resources_runs_on_an_actor_holding_them(
    ray_session: Any, with_plugin: None, tmp_path: Path
) -> None:
    from orchestrator.cluster import RayExecutor

    plan = {
        "inputs": {"path": {"type": "string"}},
        "steps": [
            {"id": "plain", "tool": "where_am_i", "args": {"tag": "input:path"}},
            {"id": "special", "tool": "where_am_i", "args": {"tag": "input:path"}, "resources": {TEST_RESOURCE: 1}},
        ],
        "output": {"plain": "step:plain", "special": "step:special"},
    }
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name)
    rows: list[DocumentResult] = []
    async with RayExecutor(workers=2) as cluster:
        compiled = validate_plan(plan, default_registry())
        summary = await run_batch(
            compiled, DocumentSource(str(tmp_path)), "path", on_document=rows.append, executor=cluster
        )
        assert ray_session.available_resources().get(TEST_RESOURCE, 0) == 0  # held by the step actor meanwhile
    assert summary.succeeded == 3
    for row in rows:
        plain, special = row.output["plain"], row.output["special"]
        assert plain["pid"] == int(str(row.worker).rsplit(":", 1)[1])  # in the document actor itself
        assert TEST_RESOURCE in special["resources"] and special["pid"] != plain["pid"]
    with anyio_fail_after(60):  # released when the executor closed (Ray's view of it catches up)
        while ray_session.available_resources().get(TEST_RESOURCE) != 1:
            await asyncio.sleep(0.1)


async def test_a_resource_no_node_has_is_a_clear_error_naming_the_step(ray_session: Any, tmp_path: Path) -> None:
    from orchestrator.cluster import RayExecutor

    plan = {
        "inputs": {"path": {"type": "string"}},
        "steps": [{"id": "big", "tool": "format_report", "args": {"text": "x"}, "resources": {"GPU": 8}}],
    }
    (tmp_path / "a.txt").write_text("a")
    async with RayExecutor(workers=1) as cluster:
        with pytest.raises(ConfigurationError, match=r"step 'big' asks for resources \{'GPU': 8\.0\}, which no node"):
            await run_batch(
                validate_plan(plan, default_registry()), DocumentSource(str(tmp_path)), "path", executor=cluster
            )


async def test_cancelling_a_batch_cancels_remote_work_and_leaves_no_actor(
    ray_session: Any, with_plugin: None, tmp_path: Path
) -> None:
    from ray.exceptions import RayActorError

    from orchestrator.cluster import RayExecutor

    plan = {
        "inputs": {"path": {"type": "string"}},
        "steps": [{"id": "wait", "tool": "wait_until_cancelled", "args": {"marker": "{{input:path}}.started"}}],
    }
    for i in range(6):
        (tmp_path / f"d{i}.txt").write_text("x")
    cluster = RayExecutor(workers=2)
    async with cluster:
        task = asyncio.create_task(
            run_batch(
                validate_plan(plan, default_registry()),
                DocumentSource(str(tmp_path / "*.txt")),
                "path",
                executor=cluster,
            )
        )
        with anyio_fail_after(120):
            while not list(tmp_path.glob("*.started")):  # remote work is running
                await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(cluster.created) == 2
    # ray.kill is asynchronous: a call sent just after it may still be served, so wait until each actor is
    # gone (bounded: an actor that was never killed fails the test here).
    for actor in cluster.created:
        with anyio_fail_after(60):
            while True:
                try:
                    await asyncio.wrap_future(actor.ready.remote().future())
                except RayActorError:
                    break
                await asyncio.sleep(0.2)


async def test_run_on_ray_sends_every_step_to_the_cluster_with_the_same_result(
    ray_session: Any, with_plugin: None
) -> None:
    from orchestrator.cluster import RayExecutor

    compiled = load_plan(HYBRID, default_registry())
    inputs = {"image_path": str(REPO / "examples/receipts/cafe.txt")}
    local, _ = await run_compiled(compiled, inputs)
    async with RayExecutor() as cluster:
        remote, _ = await run_compiled(cluster.remote_plan(compiled), inputs)
        probe = validate_plan({"steps": [{"id": "p", "tool": "where_am_i", "args": {"tag": "x"}}]}, default_registry())
        where, _ = await run_compiled(cluster.remote_plan(probe), {})
    assert remote.status == "succeeded" and remote.output == local.output
    assert {s: r.modes for s, r in remote.steps.items()} == {s: r.modes for s, r in local.steps.items()}
    assert where.steps["p"].output["pid"] != os.getpid()


async def test_ask_on_ray_runs_the_planned_steps_on_the_cluster(ray_session: Any) -> None:
    from orchestrator.cluster import RayExecutor
    from orchestrator.planner import LargePlanner

    request, context = (
        "Process this receipt and categorize items",
        {"image_path": str(REPO / "examples/receipts/cafe.txt")},
    )
    async with LargePlanner("library") as planner:
        local = await planner.run(request, context)
    async with RayExecutor() as cluster:
        async with LargePlanner("library", registry=cluster.remote_registry(default_registry())) as planner:
            remote = await planner.run(request, context)
    assert remote.result.status == "succeeded"
    assert json.dumps(remote.result.output, sort_keys=True) == json.dumps(local.result.output, sort_keys=True)


def anyio_fail_after(seconds: float) -> Any:
    import anyio

    return anyio.fail_after(seconds)


class DriverStopped(Exception):
    """Stands for the driver going away mid-batch."""


async def test_a_ray_batch_is_recorded_by_the_driver_and_resumes_from_the_store(
    ray_session: Any, tmp_path: Path
) -> None:
    from orchestrator.cluster import RayExecutor
    from orchestrator.store import RunStore, StoreRun, cost_ledger, plan_tools

    expected = await in_process(receipts())
    compiled = load_plan(HYBRID, default_registry())
    store = RunStore.open(tmp_path / "runs.sqlite")
    docs = DocumentSource(receipts())
    first = StoreRun.start(store, kind="batch", request="test", plan_data={}, documents=(str(p) for p in docs))
    first.tools.update(plan_tools(compiled))
    seen = 0

    def stop_after_ten(record: DocumentResult) -> None:
        nonlocal seen
        seen += 1
        if seen == 10:
            raise DriverStopped

    async with RayExecutor(workers=2) as cluster:
        with pytest.raises(DriverStopped):
            await run_batch(compiled, docs, "image_path", on_document=stop_after_ten, executor=cluster, store_run=first)
        recorded = {d.doc for d in store.iter_documents(first.run_id) if d.status == "succeeded"}
        assert 10 <= len(recorded) < len(expected)
        again = StoreRun.resume(store, store.get_run(first.run_id))  # type: ignore[arg-type]
        again.tools.update(plan_tools(compiled))
        summary = await run_batch(compiled, docs, "image_path", skip=recorded, executor=cluster, store_run=again)
    assert summary.skipped == len(recorded) and summary.succeeded == len(expected) - len(recorded)
    rows = {d.doc: d for d in store.iter_documents(first.run_id)}
    assert {
        doc: {k: v for k, v in r.result.items() if k not in ("duration_s", "worker")}
        for doc, r in rows.items()
        if r.result
    } == expected
    one = next(iter(expected))
    assert {s.step_id for s in store.steps(first.run_id, one) if s.status == "succeeded"} == set(compiled.steps)
    ledger = cost_ledger(store, first.run_id)
    assert ledger.documents == ledger.documents_succeeded == len(expected) and ledger.sessions == 2
