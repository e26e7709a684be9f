"""Accuracy evaluation against labelled data: how well the workers do on real documents."""

from orchestrator.evaluation.receipts import Miss, ReceiptEvalReport, evaluate_receipts

__all__ = ["Miss", "ReceiptEvalReport", "evaluate_receipts"]
