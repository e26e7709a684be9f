"""A plan file's relative paths: its inputs' defaults resolve against the plan file's folder.

``examples/example_plan_hybrid.json`` says ``"default": "receipts/cafe.png"``: it means the receipt next to
it, whatever the working directory. :func:`~orchestrator.plan.validate.load_plan` applies this.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

__all__ = ["resolve_relative_defaults"]

_WILDCARDS = "*?["


def resolve_relative_defaults(data: Any, folder: Path) -> Any:
    """A plan's data with each relative path default of its inputs made absolute against `folder` (the plan
    file's folder), when it names something there: what ``examples/plan.json`` means by ``receipts/a.png``.

    Anything else (not a string, absolute, a URL, nothing there) is left as it is.
    """
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict):
        return data
    inputs: dict[str, Any] = {}
    changed = False
    for name, spec in data["inputs"].items():
        default = spec.get("default") if isinstance(spec, dict) else None
        if isinstance(default, str) and _names_something_in(default, folder):
            spec = {**spec, "default": str(folder / default)}
            changed = True
        inputs[name] = spec
    return {**data, "inputs": inputs} if changed else data


def _names_something_in(value: str, folder: Path) -> bool:
    if not value.strip() or "://" in value or "\x00" in value or "\n" in value or len(value) > 4096:
        return False
    path = Path(value)
    if path.is_absolute():
        return False
    if any(ch in value for ch in _WILDCARDS):
        return bool(glob.glob(str(folder / value), recursive=True))
    try:
        return (folder / path).exists()
    except OSError:
        return False
