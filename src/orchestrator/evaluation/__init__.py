"""Accuracy evaluation against labelled data: how well the workers do on real documents.

An interface layer beside :mod:`orchestrator.bench`: only the commands import it.
"""

from orchestrator.evaluation.categories import CategoryEvalReport, evaluate_categories, read_labelled, split_labelled
from orchestrator.evaluation.receipts import Miss, ReceiptEvalReport, evaluate_receipts

__all__ = [
    "CategoryEvalReport",
    "Miss",
    "ReceiptEvalReport",
    "evaluate_categories",
    "evaluate_receipts",
    "read_labelled",
    "split_labelled",
]
