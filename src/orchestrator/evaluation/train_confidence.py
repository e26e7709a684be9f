"""Fit the receipt confidence weights shipped in ``rules/data/receipt_confidence.json``.

    python -m orchestrator.evaluation.train_confidence ../shared/data/receipts/sroie \\
        ../shared/data/receipts/wildreceipt --ocr rapidocr --cache-dir /work/ocr-cache/ocr --cached-only \\
        --out src/orchestrator/rules/data/receipt_confidence.json

Every labelled receipt of every folder is parsed from its provided text and, with ``--ocr``, from the
OCR of its image too (read through the OCR cache); each field's evidence and whether the parse got the
field right become one training sample, and one logistic model per field is fitted on all of them
(``fit_weights``). Evaluation never uses these weights on the receipts they were fitted on:
``orchestrator eval receipts --folds K`` refits them on the other folds for each held-out fold.
The data card is ``rules/data/receipt_confidence.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.evaluation.ocr_cache import OcrCache, merged, raw_backend
from orchestrator.evaluation.receipt_folds import (
    LabelledReceipt,
    Parsed,
    _samples,
    fit_weights,
    load_labelled,
)
from orchestrator.evaluation.receipts import _image_for
from orchestrator.rules.receipt.confidence import ConfidenceWeights
from orchestrator.rules.receipt.parse import parse_with_evidence


async def collect(
    folders: Sequence[Path], ocr: str | None, cache_dir: Path | None, *, cached_only: bool = False
) -> list[Parsed]:
    """Parse every labelled receipt (provided text, and OCR text with `ocr`), with its evidence.

    With `cached_only`, images whose OCR is not in the cache yet are left out (no OCR is run).
    """
    cache = None
    if ocr:
        key, backend = raw_backend(ocr)
        cache = OcrCache(backend, key, cache_dir)
    parsed: list[Parsed] = []
    for folder in folders:
        receipts: list[LabelledReceipt] = load_labelled(folder)
        for receipt in receipts:
            texts = [(folder / f"{receipt.id}.txt").read_text(encoding="utf-8")]
            if cache is not None:
                image = _image_for(folder, receipt.id)
                read = cache.get(image) if cached_only else await cache.read(image)
                if read is not None:
                    texts.append(merged(read).text)
            for text in texts:
                result, found = parse_with_evidence(text, ConfidenceWeights())
                parsed.append(Parsed(receipt, 0, result, found, text))
    return parsed


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
