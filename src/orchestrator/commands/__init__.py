"""Command groups of the ``orchestrator`` CLI, one module per area, each exposing ``register(app)``.

``cli.py`` stays the thin entry point: it calls each module's ``register`` to add its commands, and maps
errors to messages and exit codes. A command module parses arguments, calls the async API and renders.
"""
