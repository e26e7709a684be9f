"""``orchestrator mcp check`` and ``orchestrator mcp serve``.

orchestrator mcp check [--mcp-config mcp_servers.json] [--json]   # every server: its tools, or its error
orchestrator mcp serve                                            # our tools over stdio (for an MCP host)
orchestrator mcp serve --http 127.0.0.1:8765 --token SECRET       # streamable HTTP at /mcp
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.table import Table

from orchestrator.commands._common import JsonFlag, McpConfigOpt, print_json, run_async, stderr, stdout
from orchestrator.errors import ConfigurationError

mcp_app = typer.Typer(help="MCP: check the configured servers; serve our tools and plans.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")


@mcp_app.command("check")
def check(mcp_config: McpConfigOpt = None, as_json: JsonFlag = False) -> None:
    """Start every configured MCP server, list its tools or say why it failed, and stop it again."""
    from orchestrator.mcp_bridge.source import McpToolSource, check_servers
    from orchestrator.settings import current_settings

    path = mcp_config or current_settings().orchestrator_mcp_config
    if path is None:
        raise ConfigurationError("no MCP config: pass --mcp-config FILE or set ORCHESTRATOR_MCP_CONFIG")
    source = McpToolSource.from_file(path)
    reports = run_async(check_servers(source))
    failed = [r for r in reports if r.error is not None]
    if as_json:
        print_json([r.as_json() for r in reports])
        raise typer.Exit(1 if failed else 0)
    if not reports:
        stdout.print(f"{path}: no servers (or all disabled)", markup=False)
    table = Table(show_edge=False)
    for col in ("server", "transport", "status", "tools"):
        table.add_column(col, overflow="fold")
    for r in reports:
        if r.error is None:
            names = ", ".join(f"{r.name}.{t.name}" for t in r.tools or []) or "(none)"
            table.add_row(r.name, r.config.transport, "[green]ok[/]", names)
        else:
            table.add_row(r.name, r.config.transport, "[red]failed[/]", r.error)
    stdout.print(table)
    raise typer.Exit(1 if failed else 0)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); ``[::1]:PORT`` for IPv6."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigurationError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765") from None
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@mcp_app.command("serve")
def serve(
    http: Annotated[
        str | None,
        typer.Option("--http", help="serve streamable HTTP at HOST:PORT (host 127.0.0.1 unless given), not stdio"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="require this bearer token over HTTP (default: ORCHESTRATOR_MCP_TOKEN)"),
    ] = None,
    mcp_config: McpConfigOpt = None,
) -> None:
    """Serve the tools (with schemas, annotations, structured output) and run_plan / validate_plan /
    plan_and_run over MCP: stdio by default (what an MCP host starts), or streamable HTTP."""
    from orchestrator.mcp_bridge.server import build_server, serve_http, serve_stdio
    from orchestrator.settings import current_settings, pin_settings
    from orchestrator.toolbox import default_registry

    settings = current_settings()
    update: dict[str, object] = {"workers_transport": "local"}  # this process *is* the workers' server
    if mcp_config is not None:
        update["orchestrator_mcp_config"] = mcp_config
    pin_settings(settings.model_copy(update=update))
    server = build_server(default_registry())
    if http is None:
        try:
            run_async(serve_stdio(server))
        except KeyboardInterrupt:
            pass
        return
    host, port = parse_address(http)
    token = token or settings.orchestrator_mcp_token
    if not token and not _is_loopback(host):
        stderr.print(
            f"warning: serving on {host} with no bearer token: anyone who can reach it can run tools "
            "(pass --token or set ORCHESTRATOR_MCP_TOKEN)",
            style="yellow",
            markup=False,
        )

    def ready(bound: int) -> None:
        auth = "bearer token required" if token else "no token"
        shown = f"[{host}]" if ":" in host else host
        stderr.print(f"serving MCP on http://{shown}:{bound}/mcp ({auth}); Ctrl-C stops", markup=False)

    try:
        run_async(serve_http(server, host, port, token=token, ready=ready))
    except KeyboardInterrupt:
        stderr.print("mcp server stopped", markup=False)
    except OSError as exc:
        raise ConfigurationError(f"--http {http}: {exc.strerror or exc}") from None
