"""`orchestrator eval receipts --folds K` and `--cascade`: vendor-held-out scores, calibration, escalation."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from orchestrator.commands._common import print_json, stderr, stdout
from orchestrator.errors import ConfigurationError, InputError
from orchestrator.evaluation.receipt_folds import (
    FoldReport,
    PooledEscalation,
    ReadText,
    evaluate_folds,
    pooled_escalation,
)

TARGETS = {
    ("sroie", "ocr"): {"total": 0.93, "date": 0.97, "company": 0.85, "address": 0.80},
    ("sroie", "text"): {"total": 0.97, "date": 0.99, "company": 0.92, "address": 0.90},
    ("wildreceipt", "ocr"): {"total": 0.93, "date": 0.97, "merchant": 0.85, "item_name_f1": 0.80},
    ("wildreceipt", "text"): {"total": 0.97, "date": 0.99, "merchant": 0.92, "item_name_f1": 0.92},
}
"""Issue 15's targets, as vendor-held-out fold means."""

DEFAULT_FOLDS = 5


def _run(folder: Path, k: int, read_text: ReadText | None, **kwargs: object) -> FoldReport:
    try:
        return asyncio.run(evaluate_folds(folder, k, read_text=read_text, **kwargs))  # type: ignore[arg-type]
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _print(report: FoldReport, ocr: str | None) -> None:
    targets = TARGETS.get((report.layout, "ocr" if ocr else "text"), {})
    table = Table(
        title=(
            f"{report.folder} ({report.layout}, {report.n} receipts, {report.vendors} vendors, "
            f"{report.k} vendor-held-out folds, {report.text})"
        ),
        show_edge=False,
    )
    for col in ("field", "fold mean", "spread", "per fold", "scored on", "target"):
        table.add_column(col, justify="left" if col in ("field", "per fold") else "right")
    for name, score in report.fields.items():
        target = targets.get(name)
        mark = "" if target is None else ("[green]met[/]" if score.mean >= target else "[red]not met[/]")
        table.add_row(
            name,
            f"{score.mean:.3f}",
            f"±{score.spread:.3f}",
            " ".join(f"{s:.2f}" for s in score.folds),
            str(score.n),
            f"{target:.2f} {mark}" if target is not None else "",
        )
    stdout.print(table)
    reliability = Table(title="reliability (held-out confidence against observed accuracy)", show_edge=False)
    for col in ("field", "confidence bin", "fields", "mean confidence", "accuracy"):
        reliability.add_column(col, justify="left" if col == "field" else "right")
    for row in report.reliability:
        reliability.add_row(
            row.field, f"{row.low:.2f}-{row.high:.2f}", str(row.n), f"{row.confidence:.3f}", f"{row.accuracy:.3f}"
        )
    stdout.print(reliability)
    _print_curve(report, "escalation curve (totals; least confident escalated first)")


def _print_curve(report: FoldReport | PooledEscalation, title: str) -> None:
    curve = Table(title=title, show_edge=False)
    for col in ("escalated", "kept", "kept totals right"):
        curve.add_column(col, justify="right")
    for point in report.escalation:
        curve.add_row(f"{point.share:.0%}", str(point.kept), f"{point.accuracy:.3f}")
    stdout.print(curve)
    if report.share_for_98 is None:
        stdout.print("no share escalated leaves the kept totals 98% right")
    else:
        verdict = "[green]met[/]" if report.share_for_98 <= 0.15 else "[red]not met[/]"
        stdout.print(f"kept totals reach 98% right with {report.share_for_98:.0%} escalated (target <= 15%: {verdict})")


def run_folds(
    folders: Sequence[Path],
    k: int,
    read_text: ReadText | None,
    *,
    limit: int | None,
    as_json: bool,
    ocr: str | None,
    layout: bool = False,
) -> None:
    """Evaluate on K vendor-held-out folds and print (or --json) the report; given several folders, one report
    each and the escalation curve of all their receipts pooled (JSON: ``{"reports": [...], "pooled": ...}``)."""
    text_name = (f"OCR: {ocr}" if ocr else "provided text") + (" + layout model" if layout else "")
    reports: list[FoldReport] = []
    for folder in folders:
        with stderr.status(f"reading the receipts in {folder} ({text_name}; OCR results are cached)"):
            reports.append(_run(folder, k, read_text, text_name=text_name, limit=limit, layout=layout))
    pooled = pooled_escalation(reports) if len(reports) > 1 else None
    if as_json:
        if pooled is None:
            print_json(reports[0].model_dump(mode="json"))
        else:
            print_json(
                {"reports": [r.model_dump(mode="json") for r in reports], "pooled": pooled.model_dump(mode="json")}
            )
        return
    for report in reports:
        _print(report, ocr)
    if pooled is not None:
        _print_curve(pooled, f"pooled escalation curve ({pooled.n} totals of {', '.join(pooled.folders)}; {text_name})")


def run_cascade(
    folder: Path,
    read_text: ReadText | None,
    *,
    limit: int | None,
    threshold: float | None,
    as_json: bool,
    ocr: str | None,
    k: int = DEFAULT_FOLDS,
) -> None:
    """Escalate unsure receipts up the configured cascade; print accuracy and model calls per 1,000 receipts."""
    from orchestrator.rules.receipt.confidence import ESCALATE_BELOW
    from orchestrator.settings import current_settings, use_settings
    from orchestrator.small_model_worker import SmallModelWorker

    settings = current_settings()
    cut = threshold if threshold is not None else settings.small_model_thresholds.get("parse", ESCALATE_BELOW)
    thresholds = dict(settings.small_model_thresholds) | {"parse": cut}
    text_name = f"OCR: {ocr}" if ocr else "provided text"

    async def main() -> FoldReport:
        with use_settings(settings, small_model_thresholds=thresholds):
            worker = SmallModelWorker()
            try:
                if worker.runner is None and worker.large_runner() is None:
                    raise ConfigurationError(
                        "--cascade needs a generative model to escalate to: start `orchestrator fake-model &` and "
                        "set SMALL_MODEL_BACKEND=ollama OLLAMA_API_URL=http://127.0.0.1:11434 (or a real server)"
                    )
                return await evaluate_folds(
                    folder,
                    k,
                    read_text=read_text,
                    text_name=text_name,
                    limit=limit,
                    escalate=worker.escalate_receipt,
                    threshold=cut,
                )
            finally:
                await worker.aclose()

    with stderr.status(f"reading the receipts in {folder} ({text_name}), escalating below {cut:.2f}"):
        try:
            report = asyncio.run(main())
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    _print(report, ocr)
    per_thousand = 1000 / max(report.n, 1)
    table = Table(title=f"cascade (escalated below total confidence {cut:.2f})", show_edge=False)
    for col in ("tier", "receipts answered", "model calls", "calls per 1,000 receipts"):
        table.add_column(col, justify="left" if col == "tier" else "right")
    for tier in sorted(set(report.answered) | set(report.calls)):
        calls = report.calls.get(tier, 0)
        table.add_row(tier, str(report.answered.get(tier, 0)), str(calls), f"{calls * per_thousand:.0f}")
    stdout.print(table)
    sys.stdout.flush()
