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


BEFORE: dict[str, object] = {
    "intra_op_num_threads": 1,
    "rec_batch_num": 6,
    "memory_arena": False,
    "rec_model": "ppocrv4",
}
"""The engine settings before this tuning: onnxruntime's memory arena off (rapidocr's own), six boxes per
recognition call, one ONNX thread per session, no angle classifier, rapidocr-onnxruntime's PP-OCRv4
recogniser."""

NOW: dict[str, object] = {}
"""The back-end's settings: :data:`ENGINE_DEFAULTS` and the settings ``OCR_ONNX_THREADS``, ``OCR_REC_BATCH``."""

RAPIDOCR_CONFIGS: dict[str, dict[str, object]] = {
    "before: memory arena off, PP-OCRv4 recogniser": BEFORE,
    "now with the PP-OCRv4 recogniser (OCR_REC_MODEL=ppocrv4)": {"rec_model": "ppocrv4"},
    "now + 1 box per call (OCR_REC_BATCH=1)": {"rec_batch_num": 1},
    "now + 1 box per call, each at its own width": {"rec_batch_num": 1, "rec_img_shape": [3, 48, 48]},
    "now + 2 ONNX threads per session": {"intra_op_num_threads": 2},
    "now: memory arena on (the back-end's)": NOW,
}
"""RapidOCR engine settings compared by ``orchestrator bench receipts --profile``, as overrides over the back-end's
(:func:`~orchestrator.workers.receipts.ocr_backends.rapidocr.engine_options`): the first is the baseline, the last
the back-end's own."""

BEFORE_AND_NOW: dict[str, dict[str, object]] = {
    "before": BEFORE,
    "now with the PP-OCRv4 recogniser (OCR_REC_MODEL=ppocrv4)": {"rec_model": "ppocrv4"},
    "now": NOW,
    "now + 1 box per call (OCR_REC_BATCH=1)": {"rec_batch_num": 1},
}
"""What ``orchestrator bench receipts`` compares for rapidocr: the old settings, the back-end's, and the faster
opt-in that reads slightly different text."""


def profile_rapidocr(paths: list[Path], configs: dict[str, dict[str, object]] | None = None) -> dict[str, Any]:
    """Where rapidocr's time goes (detection, angle classification, recognition, the steps between them, by
    image size), and what each engine setting gains, at what cost in accuracy.

    Every setting reads every image, interleaved image by image (so a busy machine slows them alike), after
    one warm-up read each, with word boxes on as the back-end asks for them. Accuracy is compared with the
    first setting: the share of images whose parsed total, date and merchant come out the same, the share
    whose text is identical, and the mean similarity of the text.

    Args:
        paths: the images.
        configs: setting name -> overrides over the back-end's engine options; default :data:`RAPIDOCR_CONFIGS`.

    Returns:
        ``{"images", "rows": [{"config", "options", "images_per_s", "speedup", "cpu_s", "cpu_speedup", "wall_s",
        "det_s", "cls_s", "rec_s", "other_s", "same_fields", "same_text", "text_similarity"}], "by_size": [...]}``,
        times per image; ``other_s`` is the wall time outside the three models' own timers (cropping each box,
        resizing it for the recogniser, word boxes); ``cpu_s`` is the process's CPU seconds per image
        (``time.process_time``), steadier than wall time on a busy machine; ``by_size`` has, per image, its
        megapixels, boxes found, and detection and recognition seconds with the first and the last setting.
    """
    from difflib import SequenceMatcher

    import numpy as np
    from PIL import Image

    from orchestrator.rules.receipt.parse import parse_receipt_text
    from orchestrator.workers.receipts.ocr_backends.rapidocr import build_engine, engine_options

    configs = configs if configs is not None else RAPIDOCR_CONFIGS
    if not configs or not paths:
        raise ValueError("profile_rapidocr needs at least one image and one setting")
    options = {name: engine_options(overrides) for name, overrides in configs.items()}
    engines = {name: build_engine(chosen) for name, chosen in options.items()}
    arrays = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    for engine in engines.values():
        engine(arrays[0], return_word_box=True)  # warm-up: session start and first-run allocations, not counted
    spent = {name: np.zeros(5) for name in configs}  # wall, det, cls, rec, CPU
    texts: dict[str, list[str]] = {name: [] for name in configs}
    per_image: dict[str, list[tuple[float, float, int]]] = {name: [] for name in configs}  # det s, rec s, boxes
    for array in arrays:
        for name, engine in engines.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            found, elapsed = engine(array, return_word_box=True)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_started  # every thread of the process: a 2-thread pool counts twice
            det, cls, rec = (float(value or 0.0) for value in (list(elapsed or []) + [0.0, 0.0, 0.0])[:3])
            spent[name] += (wall, det, cls, rec, cpu)
            texts[name].append("\n".join(str(row[1]) for row in found or ()))
            per_image[name].append((det, rec, len(found or ())))
    baseline, last = next(iter(configs)), list(configs)[-1]

    def fields(text: str) -> tuple[object, ...]:
        parsed = parse_receipt_text(text)
        return parsed.total, parsed.date, parsed.merchant

    base_fields = [fields(t) for t in texts[baseline]]
    rows: list[dict[str, Any]] = []
    n = len(arrays)
    for name in configs:
        wall, det, cls, rec, cpu = (float(value) for value in spent[name])
        same = sum(fields(t) == b for t, b in zip(texts[name], base_fields, strict=True))
        identical = sum(a == b for a, b in zip(texts[name], texts[baseline], strict=True))
        similarity = [SequenceMatcher(None, a, b).ratio() for a, b in zip(texts[name], texts[baseline], strict=True)]
        rows.append(
            {
                "config": name,
                "options": {key: value for key, value in options[name].items() if key != "use_cls" or value},
                "images_per_s": round(n / wall, 3) if wall else 0.0,
                "speedup": round(float(spent[baseline][0]) / wall, 3) if wall else 0.0,
                "cpu_s": round(cpu / n, 3),
                "cpu_speedup": round(float(spent[baseline][4]) / cpu, 3) if cpu else 0.0,
                "wall_s": round(wall / n, 3),
                "det_s": round(det / n, 3),
                "cls_s": round(cls / n, 3),
                "rec_s": round(rec / n, 3),
                "other_s": round(max(wall - det - cls - rec, 0.0) / n, 3),
                "same_fields": round(same / n, 3),
                "same_text": round(identical / n, 3),
                "text_similarity": round(sum(similarity) / n, 4),
            }
        )
    by_size = sorted(
        (
            {
                "megapixels": round(array.shape[0] * array.shape[1] / 1e6, 2),
                "boxes": first[2],
                "det_s": round(first[0], 3),
                "rec_s": round(first[1], 3),
                "det_s_last": round(then[0], 3),
                "rec_s_last": round(then[1], 3),
            }
            for array, first, then in zip(arrays, per_image[baseline], per_image[last], strict=True)
        ),
        key=lambda row: (row["megapixels"], row["boxes"]),
    )
    return {"images": n, "first": baseline, "last": last, "rows": rows, "by_size": by_size}
