"""The `rapidocr` back-end (default): PP-OCRv4 ONNX models shipped with rapidocr-onnxruntime, offline, CPU.

The engine loads once, lazily, in a worker thread; each read decodes the image and runs inference in a
worker thread too, so the event loop never blocks. Boxes come back in reading order (visual rows, left
to right), and by default each row is merged into one line, so ``Latte  2 x 3.50  7.00`` stays together.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.workers.receipts.ocr_backends._image import open_image
from orchestrator.workers.receipts.ocr_backends._layout import angle_from_points, box_from_points, reading_order
from orchestrator.workers.receipts.ocr_backends.base import OCR_EXTRA_HINT

if TYPE_CHECKING:
    from PIL.Image import Image


ENGINE_DEFAULTS: dict[str, Any] = {"intra_op_num_threads": 1, "inter_op_num_threads": 1, "use_cls": False}
"""One ONNX thread per session: documents run in parallel across worker threads instead. With onnxruntime's
default (a pool over every core) recognition hung, using no CPU, on a real SROIE receipt on a busy 2-core
machine; with one thread per session it never did (``orchestrator bench receipts --profile`` compares).
No text-angle classifier: it only turns boxes printed upside down, which receipts scanned or photographed
upright do not have; without it reading is faster at the same fold-mean accuracy (see the README)."""


class RapidOcrBackend:
    """RapidOCR with its default models.

    Args:
        merge_rows: join the boxes of one visual row into a single line (default True).
        restore_spaces: put back spaces between words that the recogniser dropped, judged from the gaps
            in the ink (default True; see ``_spaces.py``).
        min_score: drop boxes the recogniser scores below this (RapidOCR's own default is 0.5).
        engine_options: keyword arguments for ``rapidocr_onnxruntime.RapidOCR(...)``, over
            :data:`ENGINE_DEFAULTS` (one ONNX thread per session).
    """

    name = "rapidocr"

    def __init__(
        self,
        *,
        merge_rows: bool = True,
        restore_spaces: bool = True,
        min_score: float = 0.5,
        engine_options: dict[str, Any] | None = None,
    ):
        self.merge_rows = merge_rows
        self.restore_spaces = restore_spaces
        self.min_score = min_score
        self._engine_options = {**ENGINE_DEFAULTS, **(engine_options or {})}
        self._engine: Any = None
        # A thread lock, taken only inside worker threads: two first reads must not build two engines.
        self._engine_lock = threading.Lock()

    def _load_engine(self, source: str) -> Any:
        with self._engine_lock:
            if self._engine is None:
                try:
                    from rapidocr_onnxruntime import RapidOCR
                except ImportError as exc:
                    raise ConfigurationError(
                        f"cannot read {source}: the rapidocr back-end needs rapidocr-onnxruntime; {OCR_EXTRA_HINT}"
                    ) from exc
                self._engine = RapidOCR(**self._engine_options)
            return self._engine

    def _read_sync(self, path: Path) -> OcrResult:
        return self._recognise(open_image(path), str(path))

    def _recognise(self, image: Image, source: str) -> OcrResult:
        image = image if image.mode == "RGB" else image.convert("RGB")
        engine = self._load_engine(source)
        try:
            found, _elapsed = engine(image, text_score=self.min_score, return_word_box=self.restore_spaces)
        except Exception as exc:  # the engine's own failures: map them at this border
            raise ToolError(f"{source}: rapidocr failed ({type(exc).__name__}: {exc})", retryable=False) from exc
        fix_spaces = _space_fixer(image) if self.restore_spaces else None
        lines: list[OcrLine] = []
        for row in found or ():
            points, text, score = row[0], str(row[1]), float(row[2])
            if fix_spaces is not None and len(row) >= 5:
                text = fix_spaces(points, text, row[3], row[4])
            if text.strip():
                lines.append(
                    OcrLine(
                        text=text.strip(),
                        box=box_from_points(points),
                        confidence=min(max(score, 0.0), 1.0),
                        angle=angle_from_points(points),
                    )
                )
        lines = reading_order(lines, merge_rows=self.merge_rows)
        return OcrResult(text="\n".join(line.text for line in lines), lines=lines, backend=self.name, source=source)

    async def read(self, path: Path) -> OcrResult:
        return await anyio.to_thread.run_sync(self._read_sync, path)

    async def read_image(self, image: Image, source: str) -> OcrResult:
        return await anyio.to_thread.run_sync(self._recognise, image, source)


def _space_fixer(image: Image) -> Callable[..., str]:
    """`restore_spaces` bound to this page; numpy (a rapidocr dependency) is imported only once rapidocr is."""
    import numpy as np

    from orchestrator.workers.receipts.ocr_backends._spaces import restore_spaces

    return functools.partial(restore_spaces, np.asarray(image.convert("L")))
