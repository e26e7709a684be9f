"""Tool sources: the MCP servers of an ``mcp_servers.json``, and the built-in workers behind ``mcp serve``.

A tool source has ``tools()`` (the tools it adds to a registry) and ``aclose()``. Neither source here
holds a live connection: a connection is made on a tool's first call in a run (or batch), lives in the
run's :class:`~orchestrator.run_scope.RunScope`, and is closed with it. ``tools()`` reads the cached
tool lists (see :mod:`orchestrator.mcp_bridge.cache`) and starts only the servers it has no fresh list
for, once, to list them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ToolError
from orchestrator.mcp_bridge.cache import ToolListCache
from orchestrator.mcp_bridge.config import McpConfig, ServerConfig, load_config
from orchestrator.mcp_bridge.tools import (
    TOOL_NAME,
    McpTool,
    ServerHandle,
    annotations_of,
    is_wrapped,
    spec_from_listing,
)
from orchestrator.registry import Tool, ToolSource, ToolSpec

if TYPE_CHECKING:
    from orchestrator.mcp_bridge.connection import McpConnection

__all__ = ["McpToolSource", "ServerReport", "WorkersSource", "check_servers", "mcp_sources", "needs_wrap"]

logger = logging.getLogger(__name__)


MAX_TOOLS = 1000
"""Tools taken from one server (a server listing more is cut short, with a warning)."""


def needs_wrap(output_schema: dict[str, Any]) -> bool:
    """Whether a tool's output goes out wrapped in ``{"result": ...}``: MCP wants an object at the top."""
    return output_schema.get("type") != "object"


class ServerReport:
    """What ``orchestrator mcp check`` found for one server: its tools, or its error."""

    def __init__(self, name: str, config: ServerConfig, tools: list[Any] | None, error: str | None) -> None:
        self.name = name
        self.config = config
        self.tools = tools
        self.error = error

    def as_json(self) -> dict[str, Any]:
        return {
            "server": self.name,
            "transport": self.config.transport,
            "ok": self.error is None,
            "error": self.error,
            "tools": [
                {"name": f"{self.name}.{tool.name}", "annotations": annotations_of(tool).model_dump()}
                for tool in self.tools or []
            ],
        }


def _run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even when this thread already runs an event loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="mcp-list") as pool:
        return pool.submit(asyncio.run, coro).result()


class McpToolSource:
    """The tools of every server in an MCP config, named ``<server>.<tool>``, of kind ``mcp``."""

    def __init__(self, config: McpConfig, *, cache_dir: Path | None = None) -> None:
        """Args:
        config: The servers.
        cache_dir: Where tool lists are cached (default: ``ORCHESTRATOR_HOME/mcp``).
        """
        if cache_dir is None:
            from orchestrator.settings import current_settings

            cache_dir = current_settings().orchestrator_home / "mcp"
        self.config = config
        self.cache = ToolListCache(cache_dir)
        self.errors: dict[str, str] = {}
        self._tools: list[Tool] | None = None

    @classmethod
    def from_file(cls, path: Path, *, cache_dir: Path | None = None) -> McpToolSource:
        return cls(load_config(path), cache_dir=cache_dir)

    def connection(self, name: str) -> McpConnection:
        """A new, unstarted connection to server `name` (it refreshes the cached listing when it starts)."""
        from orchestrator.mcp_bridge.connection import McpConnection

        config = self.config.servers[name]
        return McpConnection(name, config, on_tools=lambda tools: self.cache.store(name, config, tools))

    def tools(self) -> list[Tool]:
        """Every server's tools: from the cache, else by starting the server once to list them.

        A server that cannot be listed adds no tools; its error is logged and kept in :attr:`errors`.
        """
        if self._tools is not None:
            return self._tools
        servers = self.config.enabled()
        listings: dict[str, list[Any]] = {}
        missing: dict[str, ServerConfig] = {}
        for name, config in servers.items():
            cached = self.cache.load(name, config)
            if cached is None:
                missing[name] = config
            else:
                listings[name] = cached
        if missing:
            for report in _run_sync(check_servers(self, list(missing))):
                if report.error is not None:
                    self.errors[report.name] = report.error
                    logger.warning("%s; its tools are left out", report.error)
                else:
                    listings[report.name] = report.tools or []
        tools: list[Tool] = []
        for name, config in servers.items():
            key = f"{name}-{config.fingerprint()}"
            handle = ServerHandle(name, lambda name=name: self.connection(name), key=key)  # type: ignore[misc]
            listed_tools = listings.get(name, [])
            if len(listed_tools) > MAX_TOOLS:
                logger.warning(
                    "mcp server %r lists %d tools; only the first %d are used", name, len(listed_tools), MAX_TOOLS
                )
            for listed in listed_tools[:MAX_TOOLS]:
                if not TOOL_NAME.match(listed.name):
                    logger.warning(
                        "mcp server %r: tool name %r is not a valid MCP tool name; left out", name, listed.name[:80]
                    )
                    continue
                spec = spec_from_listing(listed, name=f"{name}.{listed.name}")
                tools.append(McpTool(spec, server=handle, remote_name=listed.name, wrapped=is_wrapped(listed)))
        self._tools = tools
        return tools

    async def aclose(self) -> None:
        """Nothing to close: connections live in the runs that made them."""


async def check_servers(source: McpToolSource, names: Iterable[str] | None = None) -> list[ServerReport]:
    """Start every named server (default: all enabled) at once, list its tools, and close it again."""
    import asyncio

    servers = source.config.enabled()
    chosen = [name for name in (names if names is not None else servers) if name in servers]

    async def one(name: str) -> ServerReport:
        connection = source.connection(name)
        try:
            tools = await connection.tools()
        except ToolError as exc:
            return ServerReport(name, servers[name], None, str(exc))
        finally:
            await connection.aclose()
        return ServerReport(name, servers[name], tools, None)

    return list(await asyncio.gather(*(one(name) for name in chosen)))


class WorkersSource:
    """The built-in worker tools, run out of process by ``orchestrator mcp serve`` (``WORKERS_TRANSPORT=mcp``).

    The tools keep their names, kinds, schemas and annotations (taken from the built-ins here, so no
    server is started to list them); calls go to a server started over stdio with this process's
    settings, or to ``WORKERS_MCP_URL`` over streamable HTTP (with ``ORCHESTRATOR_MCP_TOKEN`` as a
    bearer token when set).
    """

    def __init__(self, specs: Iterable[ToolSpec], *, url: str | None = None, token: str | None = None) -> None:
        self.specs = list(specs)
        self.url = url
        self.token = token

    def server_config(self) -> ServerConfig:
        from orchestrator.settings import current_settings, settings_env

        # Plans can run for long (OCR, model calls): the call timeout is the steps' to set, not ours.
        # Our own server serves the handshake era, the cheaper one per call (see connection.py).
        limits: dict[str, Any] = {
            "timeout_s": 3600,
            "connect_timeout_s": 120,
            "concurrency": 256,
            "max_restarts": 2,
            "protocol": "handshake",
        }
        if self.url is not None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            return ServerConfig(url=self.url, headers=headers, **limits)
        settings = current_settings()
        child = settings.model_copy(
            update={"workers_transport": "local", "orchestrator_home": settings.orchestrator_home.resolve()}
        )
        env = settings_env(child)
        env["PYTHONPATH"] = _package_root()
        return ServerConfig(command=sys.executable, args=["-m", "orchestrator", "mcp", "serve"], env=env, **limits)

    def tools(self) -> list[Tool]:
        from orchestrator.mcp_bridge.connection import McpConnection

        config = self.server_config()
        handle = ServerHandle("workers", lambda: McpConnection("workers", config), trusted=True)
        return [
            McpTool(spec, server=handle, remote_name=spec.name, wrapped=needs_wrap(spec.output_schema))
            for spec in self.specs
        ]

    async def aclose(self) -> None:
        """Nothing to close: connections live in the runs that made them."""


def _package_root() -> str:
    import orchestrator

    return str(Path(orchestrator.__file__).resolve().parents[1])


def mcp_sources(builtins: ToolSource) -> tuple[ToolSource, list[ToolSource]]:
    """The settings' MCP sources: `builtins`, or with ``WORKERS_TRANSPORT=mcp`` the same tools behind
    ``mcp serve``; and the servers of ``ORCHESTRATOR_MCP_CONFIG`` (or ``--mcp-config``), if any."""
    from orchestrator.settings import current_settings

    settings = current_settings()
    path = settings.orchestrator_mcp_config
    if settings.workers_transport == "mcp" or path is not None:
        _require_sdk()
    if settings.workers_transport == "mcp":
        specs = [tool.spec for tool in builtins.tools()]
        builtins = WorkersSource(specs, url=settings.workers_mcp_url, token=settings.orchestrator_mcp_token)
    servers: list[ToolSource] = [McpToolSource.from_file(Path(path))] if path is not None else []
    return builtins, servers


def _require_sdk() -> None:
    from importlib.util import find_spec

    from orchestrator.errors import ConfigurationError

    if find_spec("mcp") is None:
        raise ConfigurationError("MCP needs the official SDK: pip install 'orchestrator[mcp]'")
