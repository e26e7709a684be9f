"""Receipt and invoice tools: OCR (``ocr``), and the parser and categorizer tools (``tools``).

The parsing and category rules themselves are the keyword layer, :mod:`orchestrator.rules`.
"""
