"""The `tesseract` back-end: the Tesseract binary through pytesseract's ``image_to_data``.

Tesseract runs as a subprocess; we wait for it in a worker thread. Words are grouped into Tesseract's own
lines (block, paragraph, line), then put in reading order by visual rows like the other engines. The
page segmentation mode defaults to 6 ("a single uniform block of text"): with 3 or 4, Tesseract 5.3
dropped whole right-aligned price columns on our samples, and on 10 SROIE receipts psm 6 found the
printed total in 8 where psm 4 found it in 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.workers.receipts.ocr_backends._image import open_image
from orchestrator.workers.receipts.ocr_backends._layout import reading_order
from orchestrator.workers.receipts.ocr_backends.base import OCR_EXTRA_HINT

if TYPE_CHECKING:
    from PIL.Image import Image

TESSERACT_HINT = "apt-get install tesseract-ocr (or brew install tesseract), then make sure `tesseract` is on PATH"


class TesseractBackend:
    """Tesseract OCR.

    Args:
        psm: page segmentation mode (``--psm``): 6 a uniform block (default), 4 a single column, 11 sparse text.
        lang: Tesseract language code(s), e.g. ``eng`` or ``eng+deu``; the traineddata must be installed.
        merge_rows: join Tesseract lines that share a visual row into one line (default True).
        timeout_s: kill Tesseract after this many seconds (0: no limit; the default bounds a hung process).
    """

    name = "tesseract"

    def __init__(self, *, psm: int = 6, lang: str = "eng", merge_rows: bool = True, timeout_s: float = 120):
        self.psm = psm
        self.lang = lang
        self.merge_rows = merge_rows
        self.timeout_s = timeout_s

    def _read_sync(self, path: Path) -> OcrResult:
        return self._recognise(open_image(path, mode="L"), str(path))

    def _recognise(self, image: Image, source: str) -> OcrResult:
        pytesseract = _import_pytesseract(source)
        image = image if image.mode == "L" else image.convert("L")
        try:
            data = pytesseract.image_to_data(
                image,
                lang=self.lang,
                config=f"--psm {self.psm}",
                output_type=pytesseract.Output.DICT,
                timeout=self.timeout_s,
            )
        except pytesseract.TesseractNotFoundError as exc:
            command = pytesseract.pytesseract.tesseract_cmd
            raise ConfigurationError(
                f"cannot read {source}: the Tesseract program ({command!r}) was not found; {TESSERACT_HINT}"
            ) from exc
        except pytesseract.TesseractError as exc:
            raise ToolError(f"{source}: tesseract failed ({exc.message})", retryable=False) from exc
        except RuntimeError as exc:  # pytesseract's timeout
            raise ToolError(f"{source}: tesseract timed out after {self.timeout_s} s", retryable=True) from exc
        lines = reading_order(words_to_lines(data), merge_rows=self.merge_rows)
        return OcrResult(text="\n".join(line.text for line in lines), lines=lines, backend=self.name, source=source)

    async def read(self, path: Path) -> OcrResult:
        return await anyio.to_thread.run_sync(self._read_sync, path)

    async def read_image(self, image: Image, source: str) -> OcrResult:
        return await anyio.to_thread.run_sync(self._recognise, image, source)


def _import_pytesseract(source: str) -> Any:
    try:
        import pytesseract
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot read {source}: the tesseract back-end needs pytesseract; {OCR_EXTRA_HINT}"
        ) from exc
    return pytesseract


def words_to_lines(data: Mapping[str, Sequence[Any]]) -> list[OcrLine]:
    """Group the words of an ``image_to_data`` dict into lines with boxes and mean confidence (0 to 1)."""
    grouped: dict[tuple[int, int, int, int], list[int]] = {}
    for i, word in enumerate(data["text"]):
        if str(word).strip() and float(data["conf"][i]) >= 0:
            key = (
                int(data["page_num"][i]),
                int(data["block_num"][i]),
                int(data["par_num"][i]),
                int(data["line_num"][i]),
            )
            grouped.setdefault(key, []).append(i)
    lines: list[OcrLine] = []
    for indices in grouped.values():
        indices.sort(key=lambda i: int(data["left"][i]))
        x1 = min(int(data["left"][i]) for i in indices)
        y1 = min(int(data["top"][i]) for i in indices)
        x2 = max(int(data["left"][i]) + int(data["width"][i]) for i in indices)
        y2 = max(int(data["top"][i]) + int(data["height"][i]) for i in indices)
        confidence = sum(float(data["conf"][i]) for i in indices) / len(indices) / 100
        lines.append(
            OcrLine(
                text=" ".join(str(data["text"][i]).strip() for i in indices),
                box=[float(x1), float(y1), float(x2), float(y2)],
                confidence=min(max(confidence, 0.0), 1.0),
            )
        )
    return lines
