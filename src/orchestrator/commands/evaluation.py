"""`orchestrator eval ...`: accuracy on labelled data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.commands._common import stderr, stdout
from orchestrator.errors import InputError

TARGETS = {
    "sroie": {"total": 0.90, "date": 0.95, "company": 0.80, "address": 0.70},
    "wildreceipt": {"total": 0.85, "date": 0.90, "item_name_f1": 0.70},
}


def register(eval_app: typer.Typer) -> None:
    eval_app.command("receipts")(receipts)
    eval_app.command("categories")(categories)
    eval_app.command("split")(split)


def receipts(
    folders: Annotated[
        list[Path],
        typer.Argument(
            help="a SROIE- or WildReceipt-style folder (<id>.json labels); with --folds, several (each its own "
            "folds, plus the escalation curve of all of them pooled)",
            show_default=False,
        ),
    ],
    ocr: Annotated[
        str | None,
        typer.Option(help="OCR the images with this back-end (rapidocr, tesseract, azure) instead of <id>.txt"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N receipts")] = None,
    misses: Annotated[int, typer.Option(min=0, help="how many of the worst misses to show")] = 10,
    folds: Annotated[
        int | None,
        typer.Option(min=2, help="K vendor-held-out folds: mean and spread per field, reliability, escalation"),
    ] = None,
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="escalate unsure receipts to the configured small model, then the large one; report calls",
        ),
    ] = False,
    layout: Annotated[
        bool,
        typer.Option(
            "--layout",
            help="with --folds: also read the header with a line-layout model trained per fold on the other folds",
        ),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="with --cascade: escalate below this total confidence (default: settings)"),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="OCR cache folder (default ORCHESTRATOR_HOME/cache/ocr)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON on stdout and nothing else")] = False,
) -> None:
    """Run the receipt pipeline over a labelled folder; print per-field accuracy and the worst misses.

    With --folds K the receipts are split by vendor into K folds and each field's mean and spread over the
    folds is printed, with the confidence's reliability table and the escalation curve; given several
    folders, each is evaluated on its own folds and the escalation curve of all their receipts together
    follows. With --ocr the images are read once and cached per back-end and file content.
    """
    import asyncio

    from rich.table import Table

    from orchestrator.evaluation.receipts import evaluate_receipts
    from orchestrator.workers.receipts.ocr import get_ocr_backend

    for folder in folders:
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
    if len(folders) > 1 and (folds is None or cascade):
        raise InputError("several folders are evaluated together only with --folds K (and without --cascade)")
    folder = folders[0]
    read_text = None
    read_ocr = None  # the folds and the cascade read whole OCR results: the parser sees the lines' boxes too
    if ocr is not None:
        from orchestrator.evaluation.ocr_cache import OcrCache, merged, raw_backend
        from orchestrator.rules.models import OcrResult

        get_ocr_backend(ocr)  # an unknown or missing back-end fails here, before any work
        key, backend = raw_backend(ocr)
        ocr_cache = OcrCache(backend, key, cache_dir)

        async def read_ocr(path: Path) -> OcrResult:
            """The OCR result as the pipeline sees it: rows merged, each with its box."""
            return merged(await ocr_cache.read(path))

        read_text = read_ocr  # the parser gets the lines' boxes too, as in the pipeline

    if cascade:
        from orchestrator.commands._receipt_reports import run_cascade

        run_cascade(folder, read_ocr, limit=limit, threshold=threshold, as_json=as_json, ocr=ocr)
        return
    if folds is not None:
        from orchestrator.commands._receipt_reports import run_folds

        run_folds(folders, folds, read_ocr, limit=limit, as_json=as_json, ocr=ocr, layout=layout)
        return

    with stderr.status(f"reading the receipts in {folder}" + (f" with {ocr} OCR" if ocr else "")):
        report = asyncio.run(evaluate_receipts(folder, read_text=read_text, limit=limit, max_misses=max(misses, 1)))
    if as_json:
        data = report.model_dump(mode="json")
        data["misses"] = data["misses"][:misses]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    targets = TARGETS.get(report.layout, {})
    table = Table(
        title=f"{folder} ({report.layout}, {report.n} receipts, {'OCR: ' + ocr if ocr else 'provided text'})",
        show_edge=False,
    )
    for col in ("field", "score", "scored on", "target"):
        table.add_column(col, justify="left" if col == "field" else "right")
    for name, score in report.fields.items():
        target = targets.get(name)
        mark = "" if target is None else ("[green]ok[/]" if score >= target else "[red]below[/]")
        table.add_row(
            name,
            f"{score:.3f}",
            str(report.counts.get(name, report.n)),
            f"{target:.2f} {mark}" if target is not None else "",
        )
    stdout.print(table)
    if report.misses and misses:
        worst = Table(title="worst misses", show_edge=False)
        for col in ("receipt", "field", "expected", "got"):
            worst.add_column(col, overflow="fold")
        for miss in report.misses[:misses]:
            worst.add_row(miss.receipt, miss.field, miss.expected, miss.got or "—")
        stdout.print(worst)


def categories(
    test: Annotated[Path, typer.Argument(help="labelled names: JSONL {name, category} lines, or CSV")],
    examples: Annotated[
        Path | None, typer.Option(help="labelled examples (same format) the keyword and embedded tiers learn from")
    ] = None,
    backend: Annotated[str, typer.Option(help="keywords, embedded or cascade")] = "cascade",
    name_col: Annotated[str, typer.Option(help="CSV column holding the name")] = "name",
    label_col: Annotated[str, typer.Option(help="CSV column holding the label")] = "category",
    threshold: Annotated[float, typer.Option(min=0, max=1, help="confidence at which a tier answers")] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON on stdout and nothing else")] = False,
) -> None:
    """Categorization accuracy on labelled item names: overall, per cascade tier, most confused pairs."""
    import asyncio

    from rich.table import Table

    from orchestrator.evaluation.categories import evaluate_categories

    learning = f", learning from {examples}" if examples is not None and backend != "keywords" else ""
    with stderr.status(f"categorizing {test} ({backend}{learning}; the first run embeds every name)"):
        report = asyncio.run(
            evaluate_categories(
                test, examples=examples, backend=backend, name_col=name_col, label_col=label_col, threshold=threshold
            )
        )
    if as_json:
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
        return
    stdout.print(f"{test}: accuracy {report.accuracy:.3f} over {report.n} names ({backend})")
    table = Table(title="per tier", show_edge=False)
    for col in ("tier", "answered", "accuracy"):
        table.add_column(col, justify="left" if col == "tier" else "right")
    for name, tier in report.tiers.items():
        table.add_row(name, str(tier.n), f"{tier.accuracy:.3f}")
    stdout.print(table)
    if report.confusions:
        worst = Table(title="most confused", show_edge=False)
        for col in ("expected", "got", "count"):
            worst.add_column(col, justify="right" if col == "count" else "left")
        for c in report.confusions:
            worst.add_row(c.expected, c.got, str(c.count))
        stdout.print(worst)


def split(
    source: Annotated[Path, typer.Argument(help="labelled names (JSONL or CSV)")],
    out: Annotated[Path, typer.Option(help="folder for train.jsonl and test.jsonl")],
    test_fraction: Annotated[float, typer.Option(min=0.01, max=0.99)] = 0.2,
    seed: Annotated[int, typer.Option()] = 0,
    name_col: Annotated[str, typer.Option(help="CSV column holding the name")] = "name",
    label_col: Annotated[str, typer.Option(help="CSV column holding the label")] = "category",
) -> None:
    """Split labelled names into train and test files (stratified), e.g. for `eval categories --examples`."""
    from orchestrator.evaluation.categories import split_labelled

    train, test = split_labelled(
        source, out, test_fraction=test_fraction, seed=seed, name_col=name_col, label_col=label_col
    )
    stdout.print(f"wrote {train} and {test}")
