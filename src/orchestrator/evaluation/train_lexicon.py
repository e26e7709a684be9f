"""Learn the receipt header lexicon (``orchestrator/rules/data/receipt_lexicon.json``) from labelled receipts.

    python -m orchestrator.evaluation.train_lexicon ../shared/data/receipts/sroie ../shared/data/receipts/wildreceipt

The words come from the labels only (SROIE ``company`` and ``address``, WildReceipt ``Store_name_value``
and ``Store_addr_value``), counted once per vendor; a word or pair enters when at least ``--min-vendors``
vendors use it. No OCR and no receipt text is read, so the file says nothing about how any receipt was
misread. The shipped file is learned from every labelled receipt and is for users;
``orchestrator eval receipts DIR --folds K`` never uses it (it learns one per fold from the other folds).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from orchestrator.evaluation.receipt_folds import label_texts, load_labelled
from orchestrator.rules.receipt.lexicon import Lexicon, learn_lexicon

__all__ = ["learn_from_folders", "main"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "rules" / "data" / "receipt_lexicon.json"


def learn_from_folders(folders: Sequence[Path], *, min_vendors: int = 2) -> Lexicon:
    """The lexicon of every labelled receipt in `folders` (vendors as ``eval --folds`` groups them)."""
    texts: dict[str, list[str]] = defaultdict(list)
    names: list[str] = []
    for folder in folders:
        labelled = load_labelled(folder)
        if not labelled:
            raise ValueError(f"{folder}: no SROIE or WildReceipt label files (<id>.json)")
        names.append(f"{folder.name} ({len(labelled)} receipts)")
        for receipt in labelled:
            texts[receipt.vendor].extend(label_texts(receipt.truth))
    return learn_lexicon(texts, min_vendors=min_vendors, trained_on=", ".join(names))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: learn from the folders given, write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="SROIE- or WildReceipt-style labelled folders")
    parser.add_argument("--min-vendors", type=int, default=2, help="vendors that must use a word (default 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the lexicon")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if not folder.is_dir():
            print(f"{folder}: no such folder", file=sys.stderr)
            return 2
    if args.min_vendors < 1:
        print("--min-vendors: must be at least 1", file=sys.stderr)
        return 2
    try:
        lexicon = learn_from_folders(args.folders, min_vendors=args.min_vendors)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    args.out.write_text(lexicon.model_dump_json(indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(lexicon.words)} words, {len(lexicon.pairs)} pairs from {lexicon.trained_on}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
