"""What the command modules share: consoles, JSON output, running a coroutine."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout and nothing else")]
InputsOpt = Annotated[
    list[str] | None, typer.Option("--input", "-i", help="a plan input as NAME=VALUE (repeatable)", show_default=False)
]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def announce_small_model() -> None:
    """With USE_SMALL_MODEL on, say on stderr which small model answers and why (one line, before a run)."""
    from orchestrator.errors import ConfigurationError
    from orchestrator.settings import current_settings
    from orchestrator.small_model_worker.choose import choose_backend

    settings = current_settings()
    if not settings.use_small_model:
        return
    from orchestrator.providers.configured import configured_provider

    try:
        choice = choose_backend(settings)
    except ConfigurationError as exc:
        stderr.print(f"small models: not usable ({exc}); keyword rules answer", markup=False, style="yellow")
        return
    usable = {"keyword": True, "embedded": True, "llm": choice.generative, "large": bool(configured_provider(settings))}
    tiers = ", then ".join(tier for tier in settings.small_model_cascade if usable[tier])
    budget = f"; budget ${settings.budget_usd:g}" if settings.budget_usd is not None else ""
    line = f"{choice.describe()}; per item: {tiers} (the first that is sure answers){budget}"
    stderr.print(line, markup=False, highlight=False, style="cyan")
