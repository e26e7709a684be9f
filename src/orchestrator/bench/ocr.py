"""OCR throughput: how many documents per second a back-end reads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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


RAPIDOCR_CONFIGS: dict[str, dict[str, object]] = {
    "before: angle cls, 1 thread": {"use_cls": True, "intra_op_num_threads": 1, "inter_op_num_threads": 1},
    "back-end: no angle cls, 1 thread": {"use_cls": False, "intra_op_num_threads": 1, "inter_op_num_threads": 1},
    "no angle cls, 2 threads": {"use_cls": False, "intra_op_num_threads": 2, "inter_op_num_threads": 1},
}
"""RapidOCR engine settings compared by ``orchestrator bench receipts --profile``: the first is the baseline."""


def profile_rapidocr(paths: list[Path], configs: dict[str, dict[str, object]] | None = None) -> dict[str, Any]:
    """Where rapidocr's time goes (detection, angle classification, recognition, by image size), and what
    each engine setting gains, at what cost in accuracy.

    Every setting reads every image, interleaved image by image (so a busy machine slows them alike), after
    one warm-up read each. Accuracy is compared with the first setting: the share of images whose parsed
    total, date and merchant come out the same, and the mean similarity of the text.

    Returns:
        ``{"images", "rows": [{"config", "images_per_s", "speedup", "cpu_s", "cpu_speedup", "det_s", "cls_s",
        "rec_s", "same_fields", "text_similarity"}], "by_size": [...]}``, sizes in megapixels; ``cpu_s`` is
        the process's CPU seconds per image (``time.process_time``), steadier than wall time on a busy machine.
    """
    from difflib import SequenceMatcher

    import numpy as np
    from PIL import Image
    from rapidocr_onnxruntime import RapidOCR

    from orchestrator.rules.receipt.parse import parse_receipt_text

    configs = configs if configs is not None else RAPIDOCR_CONFIGS
    engines = {name: RapidOCR(**options) for name, options in configs.items()}
    arrays = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    for engine in engines.values():
        engine(arrays[0])  # warm-up: session start and first-run allocations, not counted
    spent = {name: [0.0, 0.0, 0.0, 0.0, 0.0] for name in configs}  # wall, det, cls, rec, CPU
    texts: dict[str, list[str]] = {name: [] for name in configs}
    sizes: list[tuple[float, float, float]] = []  # megapixels, baseline det s, baseline rec s
    for array in arrays:
        for name, engine in engines.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            found, elapsed = engine(array)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_started  # every thread of the process: a 2-thread pool counts twice
            det, cls, rec = (list(elapsed or []) + [0.0, 0.0, 0.0])[:3]
            for slot, value in enumerate((wall, det or 0.0, cls or 0.0, rec or 0.0, cpu)):
                spent[name][slot] += float(value)
            texts[name].append("\n".join(str(row[1]) for row in found or ()))
            if name == next(iter(configs)):
                sizes.append((array.shape[0] * array.shape[1] / 1e6, float(det or 0.0), float(rec or 0.0)))
    baseline = next(iter(configs))

    def fields(text: str) -> tuple[object, ...]:
        parsed = parse_receipt_text(text)
        return parsed.total, parsed.date, parsed.merchant

    base_fields = [fields(t) for t in texts[baseline]]
    rows: list[dict[str, Any]] = []
    for name in configs:
        wall, det, cls, rec, cpu = spent[name]
        same = sum(fields(t) == b for t, b in zip(texts[name], base_fields, strict=True))
        similarity = [SequenceMatcher(None, a, b).ratio() for a, b in zip(texts[name], texts[baseline], strict=True)]
        rows.append(
            {
                "config": name,
                "images_per_s": round(len(arrays) / wall, 3) if wall else 0.0,
                "speedup": round(spent[baseline][0] / wall, 3) if wall else 0.0,
                "cpu_s": round(cpu / len(arrays), 3),
                "cpu_speedup": round(spent[baseline][4] / cpu, 3) if cpu else 0.0,
                "det_s": round(det / len(arrays), 3),
                "cls_s": round(cls / len(arrays), 3),
                "rec_s": round(rec / len(arrays), 3),
                "same_fields": round(same / len(arrays), 3),
                "text_similarity": round(sum(similarity) / len(similarity), 4),
            }
        )
    by_size = [
        {"megapixels": round(mp, 2), "det_s": round(det, 3), "rec_s": round(rec, 3)} for mp, det, rec in sorted(sizes)
    ]
    return {"images": len(arrays), "rows": rows, "by_size": by_size}
