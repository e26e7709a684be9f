"""The toolbox: the one place that assembles a tool registry from tool sources.

Sources, in order (on a name clash the earlier one's tool stays): the built-in tools
(:class:`~orchestrator.workers.source.BuiltinTools`), the entry-point plugins
(:class:`~orchestrator.plugins.EntryPointTools`), the code sandbox's ``code_exec``
(:class:`~orchestrator.sandbox.source.SandboxTools`), then any ``extra_sources`` (MCP servers, the code
sandbox, your own: anything with ``tools()``, see :class:`~orchestrator.registry.ToolSource`).

    registry = default_registry()                               # built-ins + plugins
    registry = default_registry(extra_sources=[my_source])      # ... + your tools
    await registry.aclose()                                     # closes sources that hold resources
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.plugins import EntryPointTools
from orchestrator.registry import ToolRegistry, ToolSource
from orchestrator.sandbox.source import SandboxTools
from orchestrator.workers.source import BuiltinTools

__all__ = ["default_registry", "default_sources"]


def default_sources(*, plugins: bool = True) -> list[ToolSource]:
    """The sources of the default registry: the built-ins and, unless `plugins=False`, entry-point plugins."""
    sources: list[ToolSource] = [BuiltinTools()]
    if plugins:
        sources.append(EntryPointTools())
    sources.append(SandboxTools())  # code_exec, configured by the settings in force (issue 11)
    return sources


def default_registry(*, plugins: bool = True, extra_sources: Iterable[ToolSource] = ()) -> ToolRegistry:
    """A fresh registry: the built-in tools, entry-point plugins (unless `plugins=False`), then `extra_sources`."""
    return ToolRegistry.from_sources([*default_sources(plugins=plugins), *extra_sources])
