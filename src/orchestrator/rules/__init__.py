"""The keyword layer: rules that answer with no model, under both the workers and the small-model tiers.

- :mod:`~orchestrator.rules.models`: the receipt data types (line items, parsed receipts, categories, OCR)
- :mod:`~orchestrator.rules.receipt`: the keyword/layout receipt parser (:func:`parse_receipt_text`)
- :mod:`~orchestrator.rules.categories`: expense category rules and the cascade's keyword tier
- :mod:`~orchestrator.rules.text`: keyword text tasks (sentiment, labels, extraction, summaries)
- :mod:`~orchestrator.rules.tier`: what a cascade tier is (:class:`Prediction`, :class:`Tier`)

The cascade that puts models after these rules is :mod:`orchestrator.small_model_worker`; the tools that
route between them are :mod:`orchestrator.workers`. Nothing here imports either, nor a model.
"""
