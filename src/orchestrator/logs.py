"""Where logs go: library modules only log; the CLI calls :func:`configure_logging` (stderr, stdout stays clean).

Its own module, with nothing but :mod:`logging`, so the command line can set it up before it imports anything.
"""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(verbose: bool = False) -> None:
    """Library modules only log; the CLI decides where logs go (stderr, so stdout stays clean)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
