"""Typed results of the receipt tools: what OCR, the parser and the categorizer return."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OcrLine(BaseModel):
    """One line of recognised text, in reading order."""

    text: str
    box: list[float] | None = Field(default=None, description="[x1, y1, x2, y2] in pixels, when known")
    confidence: float | None = Field(default=None, ge=0, le=1)
    angle: float | None = Field(
        default=None,
        ge=-90,
        le=90,
        description="the text's tilt in degrees (positive: falling to the right, image y down), when the engine "
        "gives the box as a polygon",
    )


class OcrResult(BaseModel):
    """Full text plus lines, and which back-end read it."""

    text: str
    lines: list[OcrLine] = Field(default_factory=list)
    backend: str = Field(
        description="text, rapidocr, tesseract or azure; for a PDF: pdf-text, pdf-rapidocr, pdf-tesseract or a mix"
    )
    source: str = Field(description="the file that was read")


class LineItem(BaseModel):
    """One purchased item. `amount` is the line total (negative for discounts and refunds)."""

    name: str
    quantity: float = 1.0
    unit_price: float | None = None
    amount: float


class ParsedReceipt(BaseModel):
    """What the line-item parser extracts from a receipt's text."""

    merchant: str | None = None
    address: str | None = Field(default=None, description="seller address, its lines joined with spaces")
    date: str | None = Field(default=None, description="ISO 8601 (YYYY-MM-DD)")
    currency: str | None = Field(default=None, description="ISO 4217 code when it can be told, e.g. USD, MYR")
    subtotal: float | None = None
    tax: float | None = None
    total: float | None = None
    items: list[LineItem] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0, le=1, description="how well items, subtotal, tax and total agree")
    issues: list[str] = Field(default_factory=list, description="consistency problems found, e.g. items != subtotal")
    mode: str = Field(default="keyword", description="which worker produced it: keyword, or a small model")
    field_confidence: dict[str, float] = Field(
        default_factory=dict,
        description="chance that total, date, merchant and address are right (calibrated on labelled receipts)",
    )
    escalated: list[str] = Field(
        default_factory=list, description="the tiers asked after the keyword parse was unsure, in order"
    )


class CategorizedItem(LineItem):
    """A line item with its expense category."""

    category: str
    confidence: float | None = Field(default=0.0, ge=0, le=1, description="None: the model stated none")
    mode: str = Field(default="keyword", description="which tier answered: keyword, embedded, a small model, ...")


class CategorizedItems(BaseModel):
    """Items with categories, and totals per category."""

    items: list[CategorizedItem] = Field(default_factory=list)
    totals: dict[str, float] = Field(default_factory=dict, description="sum of item amounts per category")
    total: float = 0.0
    modes: dict[str, int] = Field(default_factory=dict, description="how many items each tier answered")
