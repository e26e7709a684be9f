"""Train the receipt line-layout model (``orchestrator/rules/data/receipt_layout.json``) on labelled receipts.

    python -m orchestrator.evaluation.train_layout ../shared/data/receipts/sroie ../shared/data/receipts/wildreceipt

Line labels come from the receipts' field labels by fuzzy match: a line is ``company`` when its letters and
digits lie inside the labelled company (SROIE ``company``, WildReceipt ``Store_name_value``), ``address``
likewise, ``date`` when it prints the labelled date, ``total`` when it prints the labelled total amount.
The text read is the provided ``<id>.txt``, or with ``--ocr rapidocr`` the cached OCR (never OCRs again
when the cache holds the images). Needs scikit-learn (the ``eval`` extra); the file it writes does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from orchestrator.evaluation.receipts import expected_wildreceipt_total, normalize_text
from orchestrator.rules.receipt._amounts import find_amounts, parse_amount
from orchestrator.rules.receipt._header import read_header
from orchestrator.rules.receipt.layout_model import CLASSES, FEATURE_NAMES, Box, LayoutModel, Tree, line_features

__all__ = ["label_lines", "receipt_rows", "train"]

N_ESTIMATORS = 60
MAX_DEPTH = 3
LEARNING_RATE = 0.15
MIN_MATCH = 0.6
"""Share of a line's characters that must lie in one stretch of the field's text to take its label."""


def split_lines(text: str) -> list[str]:
    """The lines as the parser sees them (NFKC, stripped, blank ones dropped)."""
    return [unicodedata.normalize("NFKC", line).strip() for line in text.splitlines() if line.strip()]


def _inside(line: str, field: str) -> bool:
    small, big = normalize_text(line), normalize_text(field)
    if len(small) < 3 or not big:
        return False
    if small in big:
        return True
    match = SequenceMatcher(None, small, big, autojunk=False).find_longest_match(0, len(small), 0, len(big))
    return match.size >= 4 and match.size / len(small) >= MIN_MATCH


def _truth_fields(truth: dict[str, Any]) -> tuple[str, str, str, float | None]:
    """(company, address, date text, total) of a SROIE or WildReceipt label file."""
    fields = truth.get("fields")
    if isinstance(fields, dict):
        return (
            " ".join(fields.get("Store_name_value", [])),
            " ".join(fields.get("Store_addr_value", [])),
            " ".join(fields.get("Date_value", [])),
            expected_wildreceipt_total(fields),
        )
    return (
        str(truth.get("company") or ""),
        str(truth.get("address") or ""),
        str(truth.get("date") or ""),
        parse_amount(str(truth.get("total") or "")),
    )


def label_lines(lines: Sequence[str], truth: dict[str, Any]) -> list[int]:
    """Each line's class index (see :data:`CLASSES`) from the receipt's field labels."""
    company, address, when, total = _truth_fields(truth)
    date_key = normalize_text(when)
    out: list[int] = []
    for line in lines:
        name = "other"
        if company and _inside(line, company):
            name = "company"
        elif address and _inside(line, address):
            name = "address"
        elif total is not None and any(a.is_money and abs(a.value - total) < 0.005 for a in find_amounts(line)):
            name = "total"
        elif len(date_key) >= 6 and date_key in normalize_text(line):
            name = "date"
        out.append(CLASSES.index(name))
    return out


def receipt_rows(
    text: str, truth: dict[str, Any], boxes: Sequence[Box | None] | None = None
) -> tuple[list[list[float]], list[int]]:
    """(feature rows, class indices) of one receipt's lines (`boxes`: each non-blank line's OCR box)."""
    lines = split_lines(text)
    if not lines:
        return [], []
    return line_features(lines, read_header(lines), boxes), label_lines(lines, truth)


def train(rows: Sequence[Sequence[float]], labels: Sequence[int], *, trained_on: str = "") -> LayoutModel:
    """Fit gradient-boosted trees on line rows and export them as a :class:`LayoutModel` (needs scikit-learn)."""
    try:
        from sklearn.ensemble import GradientBoostingClassifier
    except ImportError as exc:  # pragma: no cover - the eval extra is installed where this runs
        raise RuntimeError('training the layout model needs scikit-learn: pip install "orchestrator[eval]"') from exc
    present = sorted(set(labels))
    if len(present) != len(CLASSES):
        missing = [CLASSES[i] for i in range(len(CLASSES)) if i not in present]
        raise ValueError(f"layout training data has no line labelled {', '.join(missing)}")
    model = GradientBoostingClassifier(
        init="zero", n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH, learning_rate=LEARNING_RATE, random_state=0
    )
    model.fit([list(r) for r in rows], list(labels))
    stages = [
        [_export(model.estimators_[stage, k].tree_) for k in range(len(CLASSES))] for stage in range(N_ESTIMATORS)
    ]
    return LayoutModel(
        features=list(FEATURE_NAMES),
        classes=list(CLASSES),
        learning_rate=LEARNING_RATE,
        stages=stages,
        trained_on=trained_on,
    )


def _export(tree: Any) -> Tree:
    return Tree(
        feature=[int(f) for f in tree.feature],
        threshold=[round(float(t), 6) for t in tree.threshold],
        left=[int(c) for c in tree.children_left],
        right=[int(c) for c in tree.children_right],
        value=[round(float(v[0][0]), 6) for v in tree.value],
    )


Read = tuple[str, dict[str, Any], list[Box | None] | None]
"""A receipt's text, its labels, and its lines' boxes (None for the provided text)."""


def _read_folder(folder: Path, ocr: str | None, cache_dir: Path | None) -> list[Read]:
    from orchestrator.evaluation.receipts import _image_for, _layout_of, receipt_ids

    truths = {r: json.loads((folder / f"{r}.json").read_text(encoding="utf-8")) for r in receipt_ids(folder)}
    labelled = [(r, truth) for r, truth in truths.items() if _layout_of(truth) is not None]
    if ocr is None:
        return [((folder / f"{r}.txt").read_text(encoding="utf-8"), truth, None) for r, truth in labelled]
    from orchestrator.evaluation.ocr_cache import OcrCache, merged, raw_backend

    key, backend = raw_backend(ocr)
    cache = OcrCache(backend, key, cache_dir)

    async def read_all() -> list[Read]:
        out: list[Read] = []
        for r, truth in labelled:
            result = merged(await cache.read(_image_for(folder, r)))
            boxes: list[Box | None] = [line.box for line in result.lines if line.text.strip()]
            out.append((result.text, truth, boxes))
        return out

    return asyncio.run(read_all())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.evaluation.train_layout", description=__doc__)
    parser.add_argument("folders", nargs="+", type=Path, help="SROIE- or WildReceipt-style labelled folders")
    parser.add_argument("--ocr", action="append", default=[], help="also train on this back-end's cached OCR")
    parser.add_argument("--cache-dir", type=Path, default=None, help="OCR cache folder")
    parser.add_argument("--out", type=Path, default=Path("src/orchestrator/rules/data/receipt_layout.json"))
    args = parser.parse_args(argv)
    rows: list[list[float]] = []
    labels: list[int] = []
    receipts = 0
    for folder in args.folders:
        if not folder.is_dir():
            print(f"error: {folder}: not a folder", file=sys.stderr)
            return 2
        for ocr in [None, *args.ocr]:
            for text, truth, boxes in _read_folder(folder, ocr, args.cache_dir):
                r, y = receipt_rows(text, truth, boxes)
                rows.extend(r)
                labels.extend(y)
                receipts += 1
    try:
        model = train(rows, labels, trained_on=f"{receipts} receipt texts, {len(rows)} lines")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(model.model_dump(mode="json"), separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {model.trained_on}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
