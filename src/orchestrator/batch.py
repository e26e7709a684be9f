"""One plan over many documents: bounded concurrency, one JSON line per document, failures recorded.

The plan is compiled once (and, when it comes from a request, planned once); each document's path is
bound to one plan input. Runs share one set of concurrency limiters, so per-tool and per-kind limits
hold across the whole batch. A document that fails is written with its error and the batch goes on;
with `resume`, documents already written as succeeded are not run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from orchestrator.context import Usage
from orchestrator.errors import InputError, OrchestratorError, StoreError
from orchestrator.executor.engine import run_compiled
from orchestrator.executor.hooks import use_step_hook
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.executor.policy import ConcurrencyLimits, Limiters, RetryPolicy
from orchestrator.files import current_access, run_access, use_access
from orchestrator.plan.validate import CompiledPlan
from orchestrator.run_scope import run_scope

if TYPE_CHECKING:
    from orchestrator.store import StoreRun

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pdf"}
TEXT_SUFFIXES = {".txt", ".md"}


class DocumentResult(BaseModel):
    """One line of the batch output."""

    document: str
    status: str = Field(description="succeeded, partial, failed or error (the run could not start)")
    output: Any = None
    error: str | None = None
    failed_steps: dict[str, str] = Field(default_factory=dict, description="step id -> error")
    modes: dict[str, list[str]] = Field(default_factory=dict, description="step id -> worker modes")
    duration_s: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    worker: str | None = Field(default=None, description="on a cluster: the node and process that ran it")


class BatchSummary(BaseModel):
    total: int
    succeeded: int = 0
    failed: int = 0
    skipped: int = Field(default=0, description="already done in a previous run (resume)")
    retried: int = Field(default=0, description="documents run again because their worker died (cluster)")
    duration_s: float = 0.0
    docs_per_s: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    out: str | None = None


def _kind(name: str) -> str | None:
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return "image" if suffix in IMAGE_SUFFIXES else "text" if suffix in TEXT_SUFFIXES else None


class DocumentSource:
    """The documents of a folder, a glob or one file, read lazily: never a list of every path.

    A folder gives its images and PDFs if it has any, else its text files. :meth:`count` scans once without
    keeping names (the progress bar's total); iterating scans again, in directory order, yielding as it goes.
    """

    def __init__(self, source: str):
        self.source = source
        self.path = Path(source)
        self.pattern = any(ch in source for ch in "*?[")
        if not (self.path.is_dir() or self.pattern or self.path.is_file()):
            raise InputError(f"{source}: no such file or folder")
        self._folder_kind: str | None = None

    def _scan_folder(self) -> Iterator[tuple[str, str]]:
        with os.scandir(self.path) as entries:
            for entry in entries:
                kind = _kind(entry.name)
                if kind is not None and entry.is_file():
                    yield kind, entry.path

    def _folder_choice(self) -> str:
        if self._folder_kind is None:
            self._folder_kind = "text"
            for kind, _ in self._scan_folder():
                if kind == "image":
                    self._folder_kind = "image"
                    break
        return self._folder_kind

    def __iter__(self) -> Iterator[Path]:
        if self.path.is_dir():
            wanted = self._folder_choice()
            return (Path(p) for kind, p in self._scan_folder() if kind == wanted)
        if self.pattern:
            return (Path(p) for p in glob.iglob(self.source, recursive=True) if os.path.isfile(p))
        return iter([self.path])

    def count(self) -> int:
        """How many documents iterating gives (one scan, keeping no names)."""
        return sum(1 for _ in self)


def find_documents(source: str) -> list[Path]:
    """A folder's documents (images and PDFs if it has any, else text files), a glob's matches, or one file, sorted.

    For large batches iterate a :class:`DocumentSource` instead: this keeps every path in a list.
    """
    return sorted(DocumentSource(source))


def _done_documents(out: Path) -> set[str]:
    done: set[str] = set()
    if not out.is_file():
        return done
    with out.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run: that document runs again
            if isinstance(row, dict) and row.get("status") == "succeeded":
                done.add(str(row.get("document")))
    return done


class BatchExecutor(Protocol):
    """Where the documents of a batch run: in this process (:class:`LocalExecutor`) or on a cluster
    (:class:`orchestrator.cluster.RayExecutor`). Results come back as they finish, never all at once."""

    name: str
    retried: int  # documents run again because their worker died

    def documents(
        self,
        compiled: CompiledPlan,
        documents: Iterator[str],
        input_name: str,
        inputs: Mapping[str, Any],
        *,
        concurrency: int,
        limits: ConcurrencyLimits | None,
        retry: RetryPolicy | None,
        store_run: StoreRun | None = None,
    ) -> AsyncGenerator[DocumentResult, None]:
        """Run the plan once per document, yielding each document's result as it finishes.

        With `store_run`, steps finished by an earlier session are reused (``store_run.completed``) and each
        step is recorded as it settles; the caller records each document's line.
        """
        ...


class LocalExecutor:
    """Documents in this process: `concurrency` workers pull paths from the iterator one at a time, so memory
    does not grow with the number of documents. Concurrency limits hold across the whole batch."""

    name = "local"
    retried = 0

    async def documents(
        self,
        compiled: CompiledPlan,
        documents: Iterator[str],
        input_name: str,
        inputs: Mapping[str, Any],
        *,
        concurrency: int,
        limits: ConcurrencyLimits | None,
        retry: RetryPolicy | None,
        store_run: StoreRun | None = None,
    ) -> AsyncGenerator[DocumentResult, None]:
        limiters = Limiters(limits or ConcurrencyLimits())
        finished: asyncio.Queue[DocumentResult | None] = asyncio.Queue(maxsize=concurrency)

        async def worker() -> None:
            for doc in documents:  # a shared iterator: each path is taken by exactly one worker
                if store_run is None:
                    record = await run_document(compiled, doc, input_name, inputs, limiters, retry)
                else:
                    record = await _recorded(store_run, compiled, doc, input_name, inputs, limiters, retry)
                await finished.put(record)

        async def all_workers() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(concurrency):
                        group.create_task(worker())
            except* StoreError as failures:
                raise failures.exceptions[0] from None
            finally:
                await finished.put(None)

        async with run_scope():  # one model budget and small-model worker for the whole batch
            runner = asyncio.create_task(all_workers())
            try:
                while (record := await finished.get()) is not None:
                    yield record
                await runner  # re-raises what stopped the workers, if anything did
            finally:
                if not runner.done():
                    runner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner


async def run_batch(
    compiled: CompiledPlan,
    documents: Iterable[Path | str],
    input_name: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    out: IO[str] | None = None,
    skip: set[str] | None = None,
    limits: ConcurrencyLimits | None = None,
    retry: RetryPolicy | None = None,
    on_document: Callable[[DocumentResult], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
    executor: BatchExecutor | None = None,
    store_run: StoreRun | None = None,
) -> BatchSummary:
    """Run `compiled` once per document, at most `concurrency` documents at a time (per worker on a cluster).

    `documents` is consumed lazily and results are written to `out` as they finish: nothing keeps every
    document or every result, so memory stays flat however many documents there are.

    With `store_run`, every step and document is recorded in the run store as it finishes (by this process,
    the driver, on a cluster too), and the steps an earlier session of the run finished are reused, not run
    again; a store that cannot be written stops the batch with :class:`~orchestrator.errors.StoreError`
    (what was recorded stays, and the run can resume).
    """
    if input_name not in compiled.inputs:
        declared = ", ".join(sorted(compiled.inputs)) or "none"
        raise InputError(f"the plan has no input {input_name!r} to bind documents to (declared: {declared})")
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {concurrency}")
    skip = skip or set()
    summary = BatchSummary(total=0)

    def todo() -> Iterator[str]:
        for doc in documents:
            summary.total += 1
            name = str(doc)
            if name in skip:
                summary.skipped += 1
                if on_skip is not None:
                    on_skip(name)
            else:
                yield name

    backend = executor or LocalExecutor()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    results = backend.documents(
        compiled,
        todo(),
        input_name,
        dict(inputs or {}),
        concurrency=concurrency,
        limits=limits,
        retry=retry,
        store_run=store_run,
    )
    try:
        async for record in results:
            if store_run is not None:
                store_run.store.finish_document(
                    store_run.run_id, record.document, record.status, record.model_dump(mode="json"), store_run.session
                )
            if record.status == "succeeded":
                summary.succeeded += 1
            else:
                summary.failed += 1
            summary.usage = summary.usage + record.usage
            if out is not None:
                out.write(record.model_dump_json() + "\n")
                out.flush()
            if on_document is not None:
                on_document(record)
    finally:
        await results.aclose()
    summary.retried = backend.retried
    summary.duration_s = loop.time() - t0
    ran = summary.succeeded + summary.failed
    summary.docs_per_s = ran / summary.duration_s if summary.duration_s > 0 else 0.0
    return summary


async def run_document(
    compiled: CompiledPlan,
    doc: str,
    input_name: str,
    inputs: Mapping[str, Any],
    limiters: Limiters,
    retry: RetryPolicy | None,
    completed: Mapping[str, Any] | None = None,
) -> DocumentResult:
    """One document through the plan, as one line of the batch output (errors kept, never raised).

    `completed`: step id -> output of steps an earlier session finished (not run again).
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        given = {**inputs, input_name: str(doc)}
        values = prepare_inputs(compiled.inputs, given)
        with use_access(current_access() or run_access(given)):  # files: this document's folder, not the others'
            result, _ = await run_compiled(compiled, values, limits=limiters, retry=retry, completed=completed)
    except OrchestratorError as exc:
        return DocumentResult(document=doc, status="error", error=str(exc), duration_s=loop.time() - t0)
    except Exception as exc:  # one broken document must not stop the batch; the error is kept
        logger.exception("document %s failed unexpectedly", doc)
        return DocumentResult(
            document=doc, status="error", error=f"{type(exc).__name__}: {exc}", duration_s=loop.time() - t0
        )
    problems = {s.id: s.error or s.status for s in result.steps.values() if s.status != "succeeded"}
    first = next((s for s in result.steps.values() if s.status == "failed"), None)
    return DocumentResult(
        document=doc,
        status=result.status,
        output=result.output,
        error=f"step {first.id!r}: {first.error}" if first else result.error,
        failed_steps=problems,
        modes={s.id: list(s.modes) for s in result.steps.values() if s.modes},
        duration_s=result.duration_s,
        usage=result.usage,
    )


async def _recorded(
    store_run: StoreRun,
    compiled: CompiledPlan,
    doc: str,
    input_name: str,
    inputs: Mapping[str, Any],
    limiters: Limiters,
    retry: RetryPolicy | None,
) -> DocumentResult:
    """One document with its steps recorded as they settle (a recorder per document, dropped after it)."""
    from orchestrator.store import StepRecorder

    hook = StepRecorder(
        store_run.store,
        store_run.run_id,
        doc,
        session=store_run.session,
        tool_cache=store_run.tool_cache,
        tools=store_run.tools,
    )
    with use_step_hook(hook):
        record = await run_document(compiled, doc, input_name, inputs, limiters, retry, store_run.completed.get(doc))
    if hook.error is not None:
        raise hook.error
    return record


def resume_set(out: Path | None, resume: bool) -> set[str]:
    """Documents to skip: those an earlier run wrote as succeeded (only with resume)."""
    return _done_documents(out) if (resume and out is not None) else set()
