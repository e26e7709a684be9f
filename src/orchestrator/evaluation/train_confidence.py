"""Fit the receipt confidence weights shipped in ``rules/data/receipt_confidence.json``.

    python -m orchestrator.evaluation.train_confidence ../shared/data/receipts/sroie \\
        ../shared/data/receipts/wildreceipt --ocr rapidocr --cache-dir /work/ocr-cache/ocr --cached-only \\
        --out src/orchestrator/rules/data/receipt_confidence.json

Every labelled receipt of every folder is parsed from its provided text and, with ``--ocr``, from the
OCR of its image too (read through the OCR cache); each field's evidence and whether the parse got the
field right become one training sample, and one logistic model per field is fitted on all of them
(``fit_weights``). Each parse reads the header with a layout model and a lexicon trained on the other
folds' receipts (vendor-held-out), so the layout model's agreement with the rules, part of the merchant's
and address's evidence, is as unsure on these receipts as the shipped model's is on a user's.
Evaluation never uses these weights on the receipts they were fitted on:
``orchestrator eval receipts --folds K`` refits them on the other folds for each held-out fold.
The data card is ``rules/data/receipt_confidence.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from orchestrator.evaluation.ocr_cache import OcrCache, merged, raw_backend
from orchestrator.evaluation.receipt_folds import (
    LabelledReceipt,
    Parsed,
    _samples,
    assign_folds,
    fit_weights,
    fold_layout_models,
    fold_lexicons,
    load_labelled,
    parse_in_fold,
    unparsed,
)
from orchestrator.evaluation.receipts import _image_for
from orchestrator.rules.models import OcrLine

FOLDS = 5
"""The layout model and header lexicon each parse sees are trained on the other folds' receipts (vendors)."""


async def collect(
    folders: Sequence[Path], ocr: str | None, cache_dir: Path | None, *, cached_only: bool = False, k: int = FOLDS
) -> list[Parsed]:
    """Parse every labelled receipt (provided text, and OCR text with its lines' boxes with `ocr`), with its
    evidence.

    Each receipt is parsed as a user's receipt is (the header read with the rules and a layout model, the
    header repaired with a lexicon) but with a layout model and lexicon trained on the other `k` folds'
    receipts only (vendor-held-out, all folders together): the shipped model has seen every labelled
    receipt, so its probabilities on them would be over-confident and so would weights fitted on them.
    With `cached_only`, images whose OCR is not in the cache yet are left out (no OCR is run).
    """
    cache = None
    if ocr:
        key, backend = raw_backend(ocr)
        cache = OcrCache(backend, key, cache_dir)
    receipts: list[LabelledReceipt] = []
    reads: list[tuple[LabelledReceipt, str, list[OcrLine] | None]] = []
    for folder in folders:
        for original in load_labelled(folder):
            receipt = replace(original, id=f"{folder.name}/{original.id}")  # ids unique across folders
            receipts.append(receipt)
            reads.append((receipt, (folder / f"{original.id}.txt").read_text(encoding="utf-8"), None))
            if cache is not None:
                image = _image_for(folder, original.id)
                read = cache.get(image) if cached_only else await cache.read(image)
                if read is not None:
                    ocr_read = merged(read)
                    reads.append((receipt, ocr_read.text, list(ocr_read.lines)))
    if not receipts:
        return []
    fold_of = assign_folds({r.id: r.vendor for r in receipts}, k)
    lexicons = fold_lexicons(receipts, fold_of, k)
    first = [unparsed(r, fold_of[r.id], text, lines) for r, text, lines in reads]
    models = fold_layout_models(first, k)
    # As a user's receipt is parsed: the layout model reads the header (where the rules found none).
    return [parse_in_fold(item, lexicons[item.fold], models[item.fold], read_header=True) for item in first]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="SROIE- or WildReceipt-style labelled folders")
    parser.add_argument("--ocr", help="also fit on the OCR of the images with this back-end (cached)")
    parser.add_argument("--cache-dir", type=Path, help="OCR cache folder (default ORCHESTRATOR_HOME/cache/ocr)")
    parser.add_argument("--cached-only", action="store_true", help="with --ocr: only images already in the cache")
    parser.add_argument("--out", type=Path, required=True, help="where to write the weights (JSON)")
    args = parser.parse_args(argv)
    items = asyncio.run(collect(args.folders, args.ocr, args.cache_dir, cached_only=args.cached_only))
    sources = " + ".join(f.name for f in args.folders)
    weights = fit_weights(
        _samples(items),
        fitted_on=f"{len(items)} parses of {sources} (provided text{', ' + args.ocr + ' OCR' if args.ocr else ''})",
    )
    args.out.write_text(json.dumps(weights.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {', '.join(weights.fields)} fitted on {len(items)} parses")
    receipts = len({(item.receipt.layout, item.receipt.id) for item in items})
    if args.ocr and len(items) - receipts < receipts:
        # With --cached-only a cache of another key (the OCR changed) silently leaves the OCR parses out.
        print(
            f"warning: only {len(items) - receipts} of {receipts} images had an OCR reading in the cache",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
