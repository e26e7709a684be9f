"""The keyword/layout receipt parser: :func:`~orchestrator.rules.receipt.parse.parse_receipt_text`.

One job per private module: ``_amounts`` (money), ``_dates``, ``_labels`` (the keyword vocabulary),
``_summary`` (total, subtotal, tax, paid), ``_items``, ``_header`` (merchant and address), ``_currency``
and ``_consistency``. Only ``parse`` is public.
"""
