"""The keyword/layout receipt parser: :func:`~orchestrator.rules.receipt.parse.parse_receipt_text`.

One job per private module: ``_amounts`` (money), ``_dates``, ``_labels`` (the keyword vocabulary),
``_summary`` (total, subtotal, tax, paid), ``_items``, ``_header`` (merchant and address), ``_currency``
and ``_consistency``. Public: ``parse``, and the amount and date readers the evaluation compares with.
"""

from orchestrator.rules.receipt._amounts import parse_amount
from orchestrator.rules.receipt._dates import date_readings

__all__ = ["date_readings", "parse_amount"]
