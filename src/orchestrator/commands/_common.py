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
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="do not record the run in the run store")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="write the run's HTML report here at the end", show_default=False)
]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="local (this process) or ray (the Ray cluster at RAY_ADDRESS, else a local Ray instance)",
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
    """Run `coro` to the end. SIGTERM stops it as Ctrl-C does: the task is cancelled, so every cleanup runs
    (child processes stopped, stores closed), then KeyboardInterrupt is raised (exit code 130)."""
    import asyncio

    async def main() -> T:
        import signal

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        terminated = False

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            return await coro
        try:
            return await coro
        except asyncio.CancelledError:
            if terminated:
                raise KeyboardInterrupt from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="also write the whole run result (JSON) to this file", show_default=False),
]


def check_settings() -> None:
    """Validate the settings a run depends on, before anything runs: a bad value is one line and exit 2.

    Raises:
        ConfigurationError: an unknown ``OCR_BACKEND`` or ``SMALL_MODEL_BACKEND`` (or any malformed setting).
    """
    from orchestrator._names import known_name
    from orchestrator.errors import ConfigurationError
    from orchestrator.settings import current_settings
    from orchestrator.small_model_worker.choose import normalise_backend
    from orchestrator.workers.receipts.ocr import ocr_backend_names

    settings = current_settings()
    try:
        known_name(settings.ocr_backend, ocr_backend_names(), "OCR back-end")
    except ConfigurationError as exc:
        raise ConfigurationError(f"OCR_BACKEND={settings.ocr_backend}: {exc}") from None
    if settings.small_model_backend:
        try:
            normalise_backend(settings.small_model_backend)
        except ConfigurationError as exc:
            raise ConfigurationError(f"SMALL_MODEL_BACKEND={settings.small_model_backend}: {exc}") from None


def write_result(path: Path, data: Any) -> None:
    """Write a run result as JSON (``--out``); a path that cannot be written is a user error."""
    from orchestrator.errors import InputError

    try:
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {path}: cannot write it ({exc.strerror or exc})") from None


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
        if choice.generative:  # a back-end that cannot be set up (no endpoint, no extra) is said here, once
            _try_backend(choice.backend, choice.model, settings)
    except ConfigurationError as exc:
        console(err=True).print(f"small models: not usable ({exc}); keyword rules answer", markup=False, style="yellow")
        from orchestrator.workers.routing import mark_warned

        mark_warned(str(exc))  # said once here: the run does not warn about it again
        return
    usable = {"keyword": True, "embedded": True, "llm": choice.generative, "large": bool(configured_provider(settings))}
    tiers = ", then ".join(tier for tier in settings.small_model_cascade if usable[tier])
    budget = f"; budget ${settings.budget_usd:g}" if settings.budget_usd is not None else ""
    line = f"{choice.describe()}; per item: {tiers} (the first that is sure answers){budget}"
    console(err=True).print(line, markup=False, highlight=False, style="cyan")


def _try_backend(backend: str, model: str, settings: Any) -> None:
    """Make (and close) the small-model back-end, so that a set-up problem shows before the run."""
    from orchestrator.small_model_worker.backends import make_backend

    made = make_backend(backend, model, settings, timeout_s=settings.small_model_timeout_s)
    run_async(made.aclose())
