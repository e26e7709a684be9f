"""OCR results cached per image, keyed by back-end and file content, so re-evaluations do not OCR again.

A cached entry is the back-end's :class:`OcrResult` as JSON, under
``<root>/<backend key>/<sha256 of the file>.json``. The back-end key names the back-end *and* its
configuration (``rapidocr-boxes-v4``: boxes unmerged, each with its tilt, no angle classifier, read by the
PP-OCRv6 small recogniser; ``rapidocr-boxes-v3`` the same read by PP-OCRv4 (``OCR_REC_MODEL=ppocrv4``), and
``rapidocr-boxes-v4-<hash>`` by a model file of one's own; ``-batch1`` when ``OCR_REC_BATCH`` recognises one
box at a time instead of six, which reads slightly different text), so a change to how a back-end reads
(the model, downscaling, thresholds) never serves stale text. Writes go to a temporary file first and are
renamed into place, so a run cut short leaves no half-written entry. The default root is
``ORCHESTRATOR_HOME/cache/ocr``.

For rapidocr the cache keeps the boxes *unmerged* (one line per detected box): the evaluation rebuilds
rows and columns from them, and the merged text the pipeline sees is derived with
:func:`~orchestrator.workers.receipts.ocr_backends._layout.reading_order`, exactly as the back-end does.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from orchestrator.rules.models import OcrResult
from orchestrator.settings import current_settings
from orchestrator.workers.receipts.ocr_backends import OcrBackend, RapidOcrBackend
from orchestrator.workers.receipts.ocr_backends._layout import reading_order
from orchestrator.workers.receipts.ocr_backends.rapidocr import DEFAULT_REC_BATCH, REC_MODELS, recognition_model

__all__ = ["OcrCache", "default_cache_dir", "merged", "raw_backend"]

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``ORCHESTRATOR_HOME/cache/ocr`` (``ORCHESTRATOR_HOME`` defaults to ``.orchestrator``)."""
    return current_settings().orchestrator_home / "cache" / "ocr"


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def raw_backend(name: str) -> tuple[str, OcrBackend]:
    """(cache key, back-end) for evaluating with `name`: rapidocr keeps every box as its own line."""
    from orchestrator.workers.receipts.ocr import get_ocr_backend

    if name.strip().lower() == "rapidocr":
        settings = current_settings()
        batch = settings.ocr_rec_batch  # a batch is padded to its widest box: it changes the text read
        suffix = f"-batch{batch}" if batch != DEFAULT_REC_BATCH else ""
        model = settings.ocr_rec_model.strip().lower()
        if model == "ppocrv4":
            base = "rapidocr-boxes-v3"
        elif model in REC_MODELS:
            base = "rapidocr-boxes-v4"
        else:  # a model file of one's own: keyed by its content
            path = recognition_model(settings.ocr_rec_model)
            base = f"rapidocr-boxes-v4-{file_digest(path)[:12]}" if path is not None else "rapidocr-boxes-v3"
        return f"{base}{suffix}", RapidOcrBackend(merge_rows=False)
    backend = get_ocr_backend(name)
    return f"{backend.name}-v1", backend


def merged(result: OcrResult) -> OcrResult:
    """The result as the pipeline sees it: each visual row merged into one line."""
    lines = reading_order(result.lines, merge_rows=True)
    return result.model_copy(update={"lines": lines, "text": "\n".join(line.text for line in lines)})


class OcrCache:
    """Read documents through a back-end, once per (back-end key, file content).

    Args:
        backend: the back-end that reads a document on a cache miss.
        key: names the back-end and its configuration; a different key never shares entries.
        root: the cache folder (default :func:`default_cache_dir`).
    """

    def __init__(self, backend: OcrBackend, key: str, root: Path | None = None):
        self.backend = backend
        self.key = key
        self.root = (root if root is not None else default_cache_dir()) / key
        self.hits = 0
        self.misses = 0

    def path_for(self, document: Path) -> Path:
        """Where the entry for `document` (by content) lives."""
        return self.root / f"{file_digest(document)}.json"

    def get(self, document: Path) -> OcrResult | None:
        """The cached result for `document`, or None (a corrupt entry counts as missing)."""
        entry = self.path_for(document)
        try:
            return OcrResult.model_validate_json(entry.read_bytes())
        except (OSError, ValidationError, ValueError):
            return None

    async def read(self, document: Path) -> OcrResult:
        """The cached result, else read `document` with the back-end and store it."""
        entry = self.path_for(document)
        try:
            cached = OcrResult.model_validate_json(entry.read_bytes())
        except (OSError, ValidationError, ValueError):
            cached = None
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        result = await self.backend.read(document)
        entry.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(result.model_dump_json())
            os.replace(temporary, entry)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return result
