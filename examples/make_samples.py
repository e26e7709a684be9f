"""Render the synthetic sample receipts and invoices under examples/ (PNG plus the same text as .txt).

Every document here is made up: merchants, addresses and phone numbers (555 numbers) are fictional.
The amounts add up: item amounts sum to the subtotal, subtotal plus tax is the total.

The output is deterministic for a given Pillow version. It needs only Pillow: the font is Pillow's
bundled default (``ImageFont.load_default(size=...)``), so no system fonts are involved.

    python examples/make_samples.py            # writes examples/receipts/ and examples/invoices/
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
WIDTH = 600  # pixels
MARGIN = 32
BODY_SIZE = 22
TITLE_SIZE = 30
LINE_HEIGHT = 32
TEXT_COLUMNS = 42  # width of the .txt rendering of a left/right row

CENT = Decimal("0.01")


def money(value: Decimal | str | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


# -- documents as rows ------------------------------------------------------------------------------


@dataclass
class Row:
    """One printed row: `left` and `right` text; `center` rows are centred; `title` rows are bigger."""

    left: str = ""
    right: str = ""
    center: bool = False
    title: bool = False

    def as_text(self) -> str:
        if self.center or not self.right:
            return self.left
        gap = max(TEXT_COLUMNS - len(self.left) - len(self.right), 2)
        return self.left + " " * gap + self.right


@dataclass
class Doc:
    """A document: header rows, priced items, then totals."""

    rows: list[Row] = field(default_factory=list)
    subtotal: Decimal = Decimal("0.00")

    def title(self, text: str) -> None:
        self.rows.append(Row(text, center=True, title=True))

    def center(self, *texts: str) -> None:
        self.rows.extend(Row(text, center=True) for text in texts)

    def line(self, left: str = "", right: str = "") -> None:
        self.rows.append(Row(left, right))

    def rule(self) -> None:
        self.rows.append(Row("-" * TEXT_COLUMNS, center=True))

    def blank(self) -> None:
        self.rows.append(Row(""))

    def item(self, name: str, unit: str, qty: int = 1) -> Decimal:
        """An item bought `qty` times at `unit`: ``Latte 2 x 3.50   7.00`` (quantity shown when > 1)."""
        amount = money(Decimal(unit) * qty)
        self.line(f"{name} {qty} x {money(unit)}" if qty != 1 else name, f"{amount}")
        self.subtotal += amount
        return amount

    def weighed(self, name: str, weight: str, unit_price: str, unit: str = "lb") -> Decimal:
        """An item sold by weight: ``Bananas 1.32 lb @ 0.59/lb   0.78``."""
        amount = money(Decimal(weight) * Decimal(unit_price))
        self.line(f"{name} {weight} {unit} @ {unit_price}/{unit}", f"{amount}")
        self.subtotal += amount
        return amount

    def adjustment(self, name: str, amount: str) -> None:
        """A discount or coupon: a negative amount."""
        value = money(amount)
        self.line(name, f"{value}")
        self.subtotal += value

    def totals(self, tax_label: str, rate: str, *, taxable: Decimal | None = None, currency: str = "$") -> Decimal:
        """Subtotal, tax at `rate` percent (of `taxable`, default the subtotal) and total; returns the total."""
        base = self.subtotal if taxable is None else taxable
        tax = money(base * Decimal(rate) / 100)
        total = self.subtotal + tax
        self.rule()
        self.line("Subtotal", f"{self.subtotal}")
        self.line(f"{tax_label} {rate}%", f"{tax}")
        self.line("TOTAL", f"{currency}{total}")
        return total

    def text(self) -> str:
        return "\n".join(row.as_text() for row in self.rows) + "\n"


# -- rendering --------------------------------------------------------------------------------------


def render(doc: Doc) -> Image.Image:
    """Draw the rows black on white, grayscale, as a till or invoice printer would lay them out."""
    body = ImageFont.load_default(size=BODY_SIZE)
    title = ImageFont.load_default(size=TITLE_SIZE)
    height = 2 * MARGIN + LINE_HEIGHT * len(doc.rows) + 8 * sum(row.title for row in doc.rows)
    image = Image.new("L", (WIDTH, height), color=255)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for row in doc.rows:
        font = title if row.title else body
        if row.center:
            width = draw.textlength(row.left, font=font)
            draw.text(((WIDTH - width) / 2, y), row.left, font=font, fill=0)
        else:
            draw.text((MARGIN, y), row.left, font=font, fill=0)
            if row.right:
                width = draw.textlength(row.right, font=font)
                draw.text((WIDTH - MARGIN - width, y), row.right, font=font, fill=0)
        y += LINE_HEIGHT + (8 if row.title else 0)
    return image


def rescan(image: Image.Image, seed: int) -> Image.Image:
    """The same page scanned again: slightly rotated and shifted, a little blurred, greyer, with specks."""
    rng = random.Random(seed)
    page = Image.new("L", (image.width + 40, image.height + 40), color=255)
    page.paste(image, (14, 22))
    page = page.rotate(0.8, resample=Image.Resampling.BICUBIC, fillcolor=238)
    page = page.filter(ImageFilter.GaussianBlur(0.6))
    page = page.point(lambda v: 40 + v * 198 // 255)  # ink not quite black, paper not quite white
    pixels = page.load()
    assert pixels is not None
    for _ in range(400):
        x, y = rng.randrange(page.width), rng.randrange(page.height)
        pixels[x, y] = rng.randrange(60, 160)
    return page


def save(doc: Doc | str, image: Image.Image, folder: Path, stem: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else doc.text()
    (folder / f"{stem}.txt").write_text(text, encoding="utf-8", newline="\n")
    image.save(folder / f"{stem}.png", optimize=True)


# -- the receipts -----------------------------------------------------------------------------------


def cafe() -> Doc:
    d = Doc()
    d.title("BLUE HERON CAFE")
    d.center("118 Harbor Street, Portland, ME 04101", "Tel (207) 555-0142")
    d.blank()
    d.line("Date: 03/14/2024", "08:42 AM")
    d.line("Order #4471", "Server: Maya")
    d.rule()
    d.item("Latte", "3.50", 2)
    d.item("Blueberry Muffin", "2.75")
    d.item("Avocado Toast", "8.50")
    d.item("Croissant", "3.25", 2)
    d.item("Sparkling Water", "2.25")
    total = d.totals("Meals Tax", "8")
    d.line("VISA **** 4821", f"{total}")
    d.blank()
    d.center("Thank you! See you soon.")
    return d


def grocery() -> Doc:
    d = Doc()
    d.title("GREEN VALLEY MARKET")
    d.center("2250 Oak Ave, Springfield, IL 62704", "Store 0391  Lane 4")
    d.line("2024-03-16", "17:05")
    d.rule()
    d.weighed("Bananas", "1.32", "0.59")
    d.item("Whole Milk 1 gal", "3.89")
    d.item("Large Eggs 12 ct", "4.29")
    d.item("Sourdough Bread", "5.49")
    d.weighed("Chicken Breast", "2.10", "4.99")
    d.item("Cheddar Cheese 8 oz", "3.99", 2)
    d.item("Baby Spinach", "3.49")
    d.item("Orange Juice 52 oz", "4.79")
    taxable = d.item("Dish Soap T", "3.29") + d.item("Paper Towels 6 pk T", "8.99")
    d.adjustment("Member Savings", "-1.00")
    total = d.totals("Sales Tax (T)", "6.25", taxable=taxable)
    d.line("DEBIT **** 0937", f"{total}")
    d.blank()
    d.center("Items sold: 11", "You saved $1.00 today")
    return d


def office_supply() -> Doc:
    d = Doc()
    d.title("PAPER TRAIL OFFICE SUPPLY")
    d.center("41 Commerce Park Dr, Columbus, OH 43215", "billing@papertrail.example")
    d.blank()
    d.line("INVOICE", "INV-2024-0117")
    d.line("Date", "Mar 18, 2024")
    d.line("Bill to", "Northwind Analytics LLC")
    d.rule()
    d.item("Copy Paper A4 500 sh", "6.49", 5)
    d.item("Ballpoint Pens Blue 12pk", "4.99", 2)
    d.item("Stapler Heavy Duty", "18.50")
    d.item("Toner Cartridge 26A", "89.99")
    d.item("Sticky Notes 3x3", "2.25", 4)
    d.totals("Sales Tax", "7.5")
    d.blank()
    d.line("Terms: Net 30", "Due Apr 17, 2024")
    return d


def restaurant() -> Doc:
    d = Doc()
    d.title("TRATTORIA LUCA")
    d.center("77 Mulberry St, New York, NY 10013", "(212) 555-0186")
    d.line("22 Mar 2024", "19:48")
    d.line("Table 12", "Guests 2")
    d.rule()
    d.item("Burrata", "13.00")
    d.item("Margherita Pizza", "14.00")
    d.item("Spaghetti Carbonara", "16.50")
    d.item("House Salad", "7.00", 2)
    d.item("Glass Chianti", "9.00", 2)
    d.item("Tiramisu", "7.50")
    total = d.totals("Sales Tax", "8.875")
    d.line("AMEX **** 1009", f"{total}")
    d.blank()
    d.center("Gratuity not included")
    return d


def hardware() -> Doc:
    d = Doc()
    d.title("CORNER HARDWARE")
    d.center("905 Elm Street, Madison, WI 53703", "(608) 555-0123")
    d.line("04/02/2024", "11:17")
    d.line("Receipt 20240402-0058", "Reg 2")
    d.rule()
    d.item("Wood Screws #8 1-1/4in", "6.97", 2)
    d.item("Paint Roller 9in", "5.49")
    d.item("Interior Paint 1 gal", "34.98")
    d.item("Painters Tape 1.88in", "5.29", 2)
    d.item("Drop Cloth 9x12", "7.99")
    d.adjustment("Coupon SPRING5", "-5.00")
    total = d.totals("Sales Tax", "5.5")
    d.line("CASH", f"{money(80)}")
    d.line("CHANGE", f"{money(80) - total}")
    return d


# -- the invoices: two of them are the same invoice, scanned twice ----------------------------------


def acme_invoice() -> Doc:
    d = Doc()
    d.title("ACME INDUSTRIAL SUPPLY")
    d.center("1200 Foundry Rd, Dayton, OH 45402", "accounts@acme-industrial.example")
    d.blank()
    d.line("INVOICE", "INV-10452")
    d.line("Invoice date", "2024-02-05")
    d.line("Customer", "Northwind Analytics LLC")
    d.line("PO number", "PO-7781")
    d.rule()
    d.item("Safety Gloves L", "3.75", 12)
    d.item("Cable Ties 200pk", "8.40", 3)
    d.item("LED Work Light", "42.00")
    d.item("Extension Cord 25ft", "19.95", 2)
    d.totals("Sales Tax", "7.25")
    d.blank()
    d.line("Terms: Net 30", "Due 2024-03-06")
    return d


# What an OCR engine might make of the second scan: a few misread characters, nothing else changed.
_RESCAN_MISREADS = (
    ("ACME INDUSTRIAL SUPPLY", "ACME lNDUSTRIAL SUPPLY"),
    ("INV-10452", "INV-1O452"),
    ("Safety Gloves L 12 x 3.75", "Safety Gloves L 12 x 3,75"),
    ("Cable Ties 200pk", "Cable Ties 2O0pk"),
    ("accounts@acme-industrial.example", "accounts@acme-industria1.example"),
)


def rescan_text(text: str) -> str:
    for right, wrong in _RESCAN_MISREADS:
        assert right in text, right
        text = text.replace(right, wrong)
    return text


def brightline_invoice() -> Doc:
    d = Doc()
    d.title("BRIGHTLINE CLEANING")
    d.center("58 Lakeview Blvd, Chicago, IL 60614", "(312) 555-0175")
    d.blank()
    d.line("INVOICE", "BL-2024-031")
    d.line("Date", "March 31, 2024")
    d.line("Client", "Northwind Analytics LLC")
    d.rule()
    d.item("Office cleaning weekly", "180.00", 4)
    d.item("Window cleaning", "95.00")
    d.item("Carpet spot treatment", "45.00", 2)
    d.totals("Sales Tax", "0")
    d.blank()
    d.line("Pay by", "April 30, 2024")
    return d


def cloudnest_invoice() -> Doc:
    d = Doc()
    d.title("CLOUDNEST HOSTING")
    d.center("PO Box 4410, Austin, TX 78701", "support@cloudnest.example")
    d.blank()
    d.line("INVOICE", "CN-88213")
    d.line("Billing period", "2024-03-01 to 2024-03-31")
    d.line("Account", "northwind-analytics")
    d.rule()
    d.item("VM standard-2 (720 h)", "38.40", 2)
    d.item("Block storage 500 GB", "25.00")
    d.item("Backups 200 GB", "6.00")
    d.item("Data transfer 1.2 TB", "10.80")
    d.totals("Sales Tax", "8.25")
    d.blank()
    d.line("Charged to card", "**** 7730")
    return d


def documents() -> Iterable[tuple[str, str, Doc]]:
    """(folder, file stem, document) for every sample."""
    yield "receipts", "cafe", cafe()
    yield "receipts", "grocery", grocery()
    yield "receipts", "office_supply", office_supply()
    yield "receipts", "restaurant", restaurant()
    yield "receipts", "hardware", hardware()
    yield "invoices", "acme_INV-10452", acme_invoice()
    yield "invoices", "brightline_BL-2024-031", brightline_invoice()
    yield "invoices", "cloudnest_CN-88213", cloudnest_invoice()


def main() -> None:
    for folder, stem, doc in documents():
        save(doc, render(doc), HERE / folder, stem)
    # The duplicate: the ACME invoice again, scanned a second time and filed under another name.
    acme = acme_invoice()
    save(rescan_text(acme.text()), rescan(render(acme), seed=7), HERE / "invoices", "scan_2024-02-07_001")
    for path in sorted(HERE.glob("*/*.png")):
        print(f"{path.relative_to(HERE)}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
