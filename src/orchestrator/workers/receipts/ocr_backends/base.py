"""The one interface every OCR back-end implements, and the checks they share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from orchestrator.errors import ToolError
from orchestrator.rules.models import OcrResult

if TYPE_CHECKING:
    from PIL.Image import Image

OCR_EXTRA_HINT = 'pip install "orchestrator[ocr]"'
"""How to install the optional OCR dependencies (rapidocr-onnxruntime, pytesseract, pillow, pypdfium2)."""


@runtime_checkable
class OcrBackend(Protocol):
    """Reads one document and returns its text as lines in reading order.

    An implementation maps its engine's failures onto the error tree at its border: a missing file or a
    bad image is a non-retryable :class:`~orchestrator.errors.ToolError` naming the file, a missing engine
    is a :class:`~orchestrator.errors.ConfigurationError` saying how to install it.
    """

    @property
    def name(self) -> str:
        """The name `receipt_ocr(backend=...)` and `OCR_BACKEND` select this back-end by."""
        ...

    async def read(self, path: Path) -> OcrResult:
        """Read the document at `path`."""
        ...


@runtime_checkable
class ImageOcrBackend(OcrBackend, Protocol):
    """A back-end that also reads an image already in memory: how scanned PDF pages are read."""

    async def read_image(self, image: Image, source: str) -> OcrResult:
        """Read `image`; `source` names it in the result and in error messages (e.g. ``a.pdf page 2``)."""
        ...


def check_file(path: Path) -> None:
    """Raise a non-retryable ToolError naming `path` unless it is an existing regular file."""
    if path.is_dir():
        raise ToolError(f"{path}: is a directory, not a document", retryable=False, details={"path": str(path)})
    if not path.is_file():
        raise ToolError(f"{path}: no such file", retryable=False, details={"path": str(path)})
