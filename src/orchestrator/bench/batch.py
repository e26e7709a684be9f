"""Scale benchmark: N text receipts through parse + categorize, in process or on Ray, with the results recorded.

The N documents are made from the real receipt texts (SROIE and WildReceipt ``.txt`` files, read in place
from ``../shared/data/receipts``, else the bundled examples): each one a copy of a source text in a
temporary folder, deleted afterwards. The batch then runs exactly as ``orchestrator batch`` does, lazily
reading the folder and streaming each result to the output as it arrives. Reported: documents per second,
p50 and p99 of the per-document time, the peak memory of the driver and of each worker, and the share of
the wall time spent recording results (the store's share).

Peak memory is the process's high-water mark (``ru_maxrss``), so compare sizes in separate processes:
``orchestrator bench batch --documents 1000`` then ``--documents 10000``.
"""

from __future__ import annotations

import array
import itertools
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any, cast

from pydantic import BaseModel, Field

from orchestrator.batch import BatchExecutor, DocumentResult, DocumentSource, LocalExecutor, run_batch
from orchestrator.bench.receipts import TEXT_PIPELINE
from orchestrator.errors import InputError
from orchestrator.plan.validate import validate_plan
from orchestrator.toolbox import default_registry

__all__ = ["BatchFigures", "measure_batch", "receipt_texts", "synthesise"]


class BatchFigures(BaseModel):
    executor: str
    documents: int
    workers: int
    concurrency: int
    succeeded: int
    failed: int
    seconds: float
    docs_per_s: float
    p50_ms: float
    p99_ms: float
    driver_peak_mib: float
    worker_peak_mib: dict[str, float]
    driver_cpu_ms_per_doc: float = Field(description="CPU time of this process per document (user + system)")
    driver_ceiling_docs_per_s: float = Field(description="1000 / driver_cpu_ms_per_doc: one driver core's limit")
    store_ceiling_docs_per_s: float = Field(description="documents per second of store time: the store's limit")
    store_seconds: float = Field(description="time in run-store calls (steps, events, documents)")
    store_share: float = Field(description="store_seconds / seconds")
    output_seconds: float = Field(description="time writing the JSON lines")
    recorded: int = Field(description="documents the store holds as succeeded at the end")
    sources: str


def receipt_texts() -> list[Path]:
    """The real receipt texts to copy from: SROIE and WildReceipt beside the repository, else the examples."""
    root = Path(__file__).resolve().parents[3]
    shared = root.parent / "shared/data/receipts"
    texts = sorted([*shared.glob("sroie/*.txt"), *shared.glob("wildreceipt/*.txt")])
    return texts or sorted((root / "examples/receipts").glob("*.txt"))


def synthesise(folder: Path, n: int, sources: list[Path]) -> None:
    """`n` text receipts in `folder`, cycling through `sources` (read once each, kept in memory meanwhile)."""
    if not sources:
        raise InputError("no receipt texts to make the benchmark's documents from")
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sources]
    for i, text in zip(range(n), itertools.cycle(texts), strict=False):
        (folder / f"receipt-{i:07d}.txt").write_text(text, encoding="utf-8")


def _percentile(values: array.array[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _TimedSink:
    """The output file, timing every write, and each document's time (8 bytes per document)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.seconds = 0.0
        self.durations: array.array[float] = array.array("d")

    def __call__(self, result: DocumentResult) -> None:
        t0 = time.perf_counter()
        self.out.write(result.model_dump_json() + "\n")
        self.out.flush()
        self.seconds += time.perf_counter() - t0
        self.durations.append(result.duration_s)


class _TimedStore:
    """The run store, timing every call made on it (by the step recorders and the batch runner)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure_batch(
    documents: int,
    *,
    executor: Callable[[], AbstractAsyncContextManager[BatchExecutor]] | None = None,
    concurrency: int = 8,
) -> BatchFigures:
    """Run the text pipeline over `documents` synthesised receipts and measure it (see the module docstring)."""
    from orchestrator.store import RunStore, StoreRun, plan_tools

    compiled = validate_plan(TEXT_PIPELINE, default_registry())
    sources = receipt_texts()
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-bench-batch-"))
    try:
        synthesise(folder, documents, sources)
        source = DocumentSource(str(folder / "*.txt"))
        store = RunStore.open(folder / "runs.sqlite")
        recording = StoreRun.start(
            store,
            kind="batch",
            request="bench batch",
            plan_data=TEXT_PIPELINE,
            options={"input_name": "path", "concurrency": concurrency},
            documents=(str(p) for p in source),
        )
        recording.tools.update(plan_tools(compiled))
        timed = _TimedStore(store)
        recording.store = cast(RunStore, timed)
        with (folder / "results.jsonl").open("w", encoding="utf-8") as out:
            sink = _TimedSink(out)
            async with executor() if executor is not None else _local() as backend:
                cpu0 = _cpu_seconds()
                summary = await run_batch(
                    compiled,
                    source,
                    "path",
                    concurrency=concurrency,
                    on_document=sink,
                    executor=backend,
                    store_run=recording,
                )
                cpu = _cpu_seconds() - cpu0
                peaks = dict(getattr(backend, "worker_peaks", {}))
                workers = len(peaks) or 1
        store.finish_run(recording.run_id, "succeeded" if summary.failed == 0 else "partial")
        recorded = sum(1 for d in store.iter_documents(recording.run_id) if d.status == "succeeded")
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    driver = _peak_mib()
    ran = max(1, summary.succeeded + summary.failed)
    cpu_ms = cpu / ran * 1000
    return BatchFigures(
        executor=backend.name,
        documents=documents,
        workers=workers,
        concurrency=concurrency,
        succeeded=summary.succeeded,
        failed=summary.failed,
        seconds=summary.duration_s,
        docs_per_s=summary.docs_per_s,
        p50_ms=_percentile(sink.durations, 0.50) * 1000,
        p99_ms=_percentile(sink.durations, 0.99) * 1000,
        driver_peak_mib=driver,
        worker_peak_mib={k: v / 2**20 for k, v in peaks.items()} if peaks else {"driver (in process)": driver},
        driver_cpu_ms_per_doc=cpu_ms,
        driver_ceiling_docs_per_s=1000 / cpu_ms if cpu_ms > 0 else 0.0,
        store_ceiling_docs_per_s=ran / timed.seconds if timed.seconds > 0 else 0.0,
        store_seconds=timed.seconds,
        store_share=timed.seconds / summary.duration_s if summary.duration_s > 0 else 0.0,
        output_seconds=sink.seconds,
        recorded=recorded,
        sources=f"{len(sources)} receipt texts, cycled",
    )


class _local(AbstractAsyncContextManager[BatchExecutor]):
    async def __aenter__(self) -> BatchExecutor:
        return LocalExecutor()

    async def __aexit__(self, *exc: object) -> None:
        return None
