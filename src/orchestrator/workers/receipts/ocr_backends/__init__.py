"""OCR back-ends: each reads a document into an :class:`~orchestrator.rules.models.OcrResult`.

Heavy engines (onnxruntime, the Tesseract binary, PDFium) are imported or called only when a back-end
first reads, so importing this package is cheap.
"""

from orchestrator.workers.receipts.ocr_backends.azure import AzureReadBackend
from orchestrator.workers.receipts.ocr_backends.base import ImageOcrBackend, OcrBackend
from orchestrator.workers.receipts.ocr_backends.pdf import PDF_SUFFIXES, read_pdf
from orchestrator.workers.receipts.ocr_backends.rapidocr import RapidOcrBackend
from orchestrator.workers.receipts.ocr_backends.tesseract import TesseractBackend
from orchestrator.workers.receipts.ocr_backends.text import TEXT_SUFFIXES, TextBackend

__all__ = [
    "PDF_SUFFIXES",
    "TEXT_SUFFIXES",
    "AzureReadBackend",
    "ImageOcrBackend",
    "OcrBackend",
    "RapidOcrBackend",
    "TesseractBackend",
    "TextBackend",
    "read_pdf",
]
