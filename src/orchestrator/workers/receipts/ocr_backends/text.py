"""The `text` back-end: a .txt or .md file is already text, so it passes through, split into lines."""

from __future__ import annotations

from pathlib import Path

import anyio

from orchestrator.errors import ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.workers.receipts.ocr_backends.base import check_file

TEXT_SUFFIXES = frozenset({".txt", ".md"})
"""Files with these suffixes are read as text whatever back-end is asked for."""


class TextBackend:
    """Reads a text file as UTF-8 (a BOM is dropped); blank lines are left out of `lines`, not `text`."""

    name = "text"

    async def read(self, path: Path) -> OcrResult:
        check_file(path)
        try:
            data = await anyio.Path(path).read_bytes()
        except OSError as exc:
            raise ToolError(f"{path}: cannot read file ({exc})", retryable=False, details={"path": str(path)}) from exc
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ToolError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                retryable=False,
                details={"path": str(path)},
            ) from exc
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = [OcrLine(text=line.strip()) for line in text.split("\n") if line.strip()]
        return OcrResult(text=text, lines=lines, backend=self.name, source=str(path))
