"""The toolbox: the one place that assembles a tool registry from tool sources.

Sources, in order (on a name clash the earlier one's tool stays): the built-in tools
(:class:`~orchestrator.workers.source.BuiltinTools`; with ``WORKERS_TRANSPORT=mcp`` the same tools run out
of process, :class:`~orchestrator.mcp_bridge.source.WorkersSource`), the entry-point plugins
(:class:`~orchestrator.plugins.EntryPointTools`), the MCP servers of ``ORCHESTRATOR_MCP_CONFIG``
(:class:`~orchestrator.mcp_bridge.source.McpToolSource`), then any ``extra_sources`` (the code sandbox,
your own: anything with ``tools()``, see :class:`~orchestrator.registry.ToolSource`).

    registry = default_registry()                               # built-ins + plugins
    registry = default_registry(extra_sources=[my_source])      # ... + your tools
    await registry.aclose()                                     # closes sources that hold resources
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.plugins import EntryPointTools
from orchestrator.registry import ToolRegistry, ToolSource
from orchestrator.workers.source import BuiltinTools

__all__ = ["default_registry", "default_sources"]


def default_sources(*, plugins: bool = True, mcp: bool = True) -> list[ToolSource]:
    """The sources of the default registry: the built-ins and, unless `plugins=False`, entry-point plugins;
    unless `mcp=False`, the settings' MCP servers (and the built-ins out of process with WORKERS_TRANSPORT=mcp)."""
    builtins: ToolSource = BuiltinTools()
    servers: list[ToolSource] = []
    if mcp:
        from orchestrator.settings import current_settings

        settings = current_settings()
        if settings.workers_transport == "mcp" or settings.orchestrator_mcp_config is not None:
            from orchestrator.mcp_bridge.source import mcp_sources  # (asyncio and the SDK only when used)

            builtins, servers = mcp_sources(builtins)
    sources: list[ToolSource] = [builtins]
    if plugins:
        sources.append(EntryPointTools())
    return [*sources, *servers]


def default_registry(
    *, plugins: bool = True, mcp: bool = True, extra_sources: Iterable[ToolSource] = ()
) -> ToolRegistry:
    """A fresh registry: the built-in tools, entry-point plugins (unless `plugins=False`), MCP servers (unless
    `mcp=False`), then `extra_sources`."""
    return ToolRegistry.from_sources([*default_sources(plugins=plugins, mcp=mcp), *extra_sources])
