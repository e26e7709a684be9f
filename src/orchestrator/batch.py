"""One plan over many documents: bounded concurrency, one JSON line per document, failures recorded.

The plan is compiled once (and, when it comes from a request, planned once); each document's path is
bound to one plan input. Runs share one set of concurrency limiters, so per-tool and per-kind limits
hold across the whole batch. A document that fails is written with its error and the batch goes on;
with `resume`, documents already written as succeeded are not run again.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field

from orchestrator.context import Usage
from orchestrator.errors import InputError, OrchestratorError
from orchestrator.executor.engine import run_compiled
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.executor.policy import ConcurrencyLimits, Limiters, RetryPolicy
from orchestrator.files import current_access, run_access, use_access
from orchestrator.plan.validate import CompiledPlan
from orchestrator.run_scope import run_scope

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


class BatchSummary(BaseModel):
    total: int
    succeeded: int = 0
    failed: int = 0
    skipped: int = Field(default=0, description="already done in a previous run (resume)")
    duration_s: float = 0.0
    docs_per_s: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    out: str | None = None


def find_documents(source: str) -> list[Path]:
    """A folder's documents (images and PDFs if it has any, else text files), a glob's matches, or one file."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        return images or [p for p in files if p.suffix.lower() in TEXT_SUFFIXES]
    if any(ch in source for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
    if path.is_file():
        return [path]
    raise InputError(f"{source}: no such file or folder")


def _done_documents(out: Path) -> set[str]:
    done: set[str] = set()
    if not out.is_file():
        return done
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interrupted run: that document runs again
        if isinstance(row, dict) and row.get("status") == "succeeded":
            done.add(str(row.get("document")))
    return done


async def run_batch(
    compiled: CompiledPlan,
    documents: Iterable[Path],
    input_name: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    out: IO[str] | None = None,
    skip: set[str] | None = None,
    limits: ConcurrencyLimits | None = None,
    retry: RetryPolicy | None = None,
    on_document: Callable[[DocumentResult], None] | None = None,
) -> BatchSummary:
    """Run `compiled` once per document, at most `concurrency` documents at a time."""
    if input_name not in compiled.inputs:
        declared = ", ".join(sorted(compiled.inputs)) or "none"
        raise InputError(f"the plan has no input {input_name!r} to bind documents to (declared: {declared})")
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {concurrency}")
    docs = list(documents)
    skip = skip or set()
    todo = [d for d in docs if str(d) not in skip]
    summary = BatchSummary(total=len(docs), skipped=len(docs) - len(todo))
    limiters = Limiters(limits or ConcurrencyLimits())
    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def one(doc: Path) -> None:
        async with gate:
            record = await _run_one(compiled, doc, input_name, inputs or {}, limiters, retry)
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

    async with run_scope():  # one model budget and small-model worker for the whole batch
        async with asyncio.TaskGroup() as group:
            for doc in todo:
                group.create_task(one(doc))
    summary.duration_s = loop.time() - t0
    summary.docs_per_s = len(todo) / summary.duration_s if summary.duration_s > 0 else 0.0
    return summary


async def _run_one(
    compiled: CompiledPlan,
    doc: Path,
    input_name: str,
    inputs: Mapping[str, Any],
    limiters: Limiters,
    retry: RetryPolicy | None,
) -> DocumentResult:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        given = {**inputs, input_name: str(doc)}
        values = prepare_inputs(compiled.inputs, given)
        with use_access(current_access() or run_access(given)):  # files: this document's folder, not the others'
            result, _ = await run_compiled(compiled, values, limits=limiters, retry=retry)
    except OrchestratorError as exc:
        return DocumentResult(document=str(doc), status="error", error=str(exc), duration_s=loop.time() - t0)
    except Exception as exc:  # one broken document must not stop the batch; the error is kept
        logger.exception("document %s failed unexpectedly", doc)
        return DocumentResult(
            document=str(doc), status="error", error=f"{type(exc).__name__}: {exc}", duration_s=loop.time() - t0
        )
    problems = {s.id: s.error or s.status for s in result.steps.values() if s.status != "succeeded"}
    first = next((s for s in result.steps.values() if s.status == "failed"), None)
    return DocumentResult(
        document=str(doc),
        status=result.status,
        output=result.output,
        error=f"step {first.id!r}: {first.error}" if first else result.error,
        failed_steps=problems,
        modes={s.id: list(s.modes) for s in result.steps.values() if s.modes},
        duration_s=result.duration_s,
        usage=result.usage,
    )


def resume_set(out: Path | None, resume: bool) -> set[str]:
    """Documents to skip: those an earlier run wrote as succeeded (only with resume)."""
    return _done_documents(out) if (resume and out is not None) else set()
