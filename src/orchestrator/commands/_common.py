"""What the command modules share: consoles, JSON output, running a coroutine."""

from __future__ import annotations

import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

_consoles: dict[str, Console] = {}


def console(*, err: bool = False) -> Console:
    """The rich console on stdout (or stderr with `err`), made on first use: rich.console takes a while to
    import, and ``validate`` prints plain lines with :func:`echo`."""
    name = "stderr" if err else "stdout"
    made = _consoles.get(name)
    if made is None:
        from rich.console import Console

        made = _consoles[name] = Console(stderr=err, soft_wrap=True)
    return made


def __getattr__(name: str) -> Console:
    """``stdout`` and ``stderr``, the two consoles (see :func:`console`)."""
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return console(err=name == "stderr")


def echo(text: str, *, err: bool = False) -> None:
    """One plain line (no markup, no highlighting) on stdout, or stderr with `err`, without loading rich."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


JsonFlag = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout and nothing else")]
McpConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--mcp-config",
        help="mcp_servers.json: MCP servers whose tools plans may call (default: ORCHESTRATOR_MCP_CONFIG)",
        show_default=False,
    ),
]
InputsOpt = Annotated[
    list[str] | None, typer.Option("--input", "-i", help="a plan input as NAME=VALUE (repeatable)", show_default=False)
]


def use_mcp_config(path: Path | None) -> None:
    """Make `path` the MCP config for the rest of this command (over ORCHESTRATOR_MCP_CONFIG)."""
    if path is None:
        return
    from orchestrator.settings import current_settings, pin_settings

    pin_settings(current_settings().model_copy(update={"orchestrator_mcp_config": path}))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

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
        console(err=True).print(f"small models: not usable ({exc}); keyword rules answer", markup=False, style="yellow")
        return
    usable = {"keyword": True, "embedded": True, "llm": choice.generative, "large": bool(configured_provider(settings))}
    tiers = ", then ".join(tier for tier in settings.small_model_cascade if usable[tier])
    budget = f"; budget ${settings.budget_usd:g}" if settings.budget_usd is not None else ""
    line = f"{choice.describe()}; per item: {tiers} (the first that is sure answers){budget}"
    console(err=True).print(line, markup=False, highlight=False, style="cyan")
