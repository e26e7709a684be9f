"""OCR throughput: how many documents per second a back-end reads."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from orchestrator.workers.receipts.ocr import get_ocr_backend, read_document


async def measure_ocr(
    paths: list[Path], backend: str, *, concurrency: int = 1, warmup: bool = True
) -> dict[str, float | int | str]:
    """Read every file in `paths` with `backend` and time it.

    Args:
        paths: the documents to read; each is read once (a failure stops the measurement).
        backend: the OCR back-end name, e.g. rapidocr or tesseract.
        concurrency: how many reads run at once.
        warmup: read the first document once before timing, so loading the engine is not counted
            (reported separately as ``warmup_seconds``).

    Returns:
        ``{"backend", "n", "seconds", "docs_per_s", "warmup_seconds"}``.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    get_ocr_backend(backend)  # fail fast on an unknown name
    warmup_seconds = 0.0
    if warmup and paths:
        started = time.perf_counter()
        await read_document(paths[0], backend)
        warmup_seconds = time.perf_counter() - started

    limiter = anyio.CapacityLimiter(concurrency)

    async def read_one(path: Path) -> None:
        async with limiter:
            await read_document(path, backend)

    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:
            for path in paths:
                tg.start_soon(read_one, path)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:  # one document failed and the rest were cancelled: say which
            raise group.exceptions[0] from None
        raise
    seconds = time.perf_counter() - started
    return {
        "backend": backend,
        "n": len(paths),
        "seconds": round(seconds, 3),
        "docs_per_s": round(len(paths) / seconds, 3) if seconds > 0 else 0.0,
        "warmup_seconds": round(warmup_seconds, 3),
    }
