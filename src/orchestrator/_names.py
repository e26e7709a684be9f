"""Names a user types for a choice (a provider, a back-end): forgiving about case and dashes, strict otherwise."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from orchestrator.errors import ConfigurationError


def known_name(name: str, valid: Sequence[str], what: str, aliases: Mapping[str, str] | None = None) -> str:
    """`name` as spelled in `valid` (case, spaces and dashes forgiven, `aliases` followed).

    Raises:
        ConfigurationError: ``unknown <what> 'name'; did you mean 'x'? (valid: ...)``.
    """
    cleaned = name.strip().lower().replace("-", "_")
    cleaned = (aliases or {}).get(cleaned, cleaned)
    if cleaned in valid:
        return cleaned
    close = difflib.get_close_matches(cleaned, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(f"unknown {what} {name!r}{hint} (valid: {', '.join(valid)})")
