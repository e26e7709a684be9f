"""Built-in worker tools. Importing this package registers them in `orchestrator.registry.BUILTINS`."""

from orchestrator.workers import receipts

__all__ = ["receipts"]
