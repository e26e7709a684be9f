"""Open an image for a local OCR engine, mapping every way it can fail to an error that names the file.

Run this in a worker thread: decoding a large scan takes tens of milliseconds.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.workers.receipts.ocr_backends.base import OCR_EXTRA_HINT, check_file

if TYPE_CHECKING:
    from PIL.Image import Image


def open_image(path: Path, *, mode: str = "RGB") -> Image:
    """Decode the image at `path` fully, upright (EXIF orientation applied), converted to `mode`."""
    try:
        from PIL import Image as PILImage
        from PIL import ImageOps
    except ImportError as exc:
        raise ConfigurationError(f"cannot read {path}: Pillow is not installed; {OCR_EXTRA_HINT}") from exc
    check_file(path)
    try:
        with warnings.catch_warnings():
            # A huge image is a bad input here, not a warning to escalate or ignore.
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
                return upright.convert(mode)
    except (
        OSError,
        ValueError,
        SyntaxError,
        PILImage.DecompressionBombWarning,
        PILImage.DecompressionBombError,
    ) as exc:
        # Pillow reports truncated and unknown files as OSError (UnidentifiedImageError is one), and
        # some corrupt headers as ValueError or SyntaxError.
        raise ToolError(f"{path}: not a readable image ({exc})", retryable=False, details={"path": str(path)}) from exc
