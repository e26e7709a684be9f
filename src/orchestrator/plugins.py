"""Tool plugins: packages that declare an entry point in the ``orchestrator.tools`` group, as a tool source.

The entry point names a module that has ``register_tools(registry)`` (called with an empty registry whose
tools are then taken), or that describes its tools with :func:`orchestrator.registry.tool`, or both.
A plugin that fails to load is one warning and is left out: a broken plugin never takes the CLI down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from importlib.metadata import EntryPoint, entry_points

from orchestrator.registry import Tool, ToolRegistry, tools_in

__all__ = ["ENTRY_POINT_GROUP", "EntryPointTools"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "orchestrator.tools"


class EntryPointTools:
    """The tools of every installed plugin in an entry-point group (default ``orchestrator.tools``)."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self.name = f"entry points {group!r}"

    def tools(self) -> Iterator[Tool]:
        for ep in entry_points(group=self.group):
            try:
                found = _plugin_tools(ep)
            except Exception as exc:  # a broken plugin must not take the CLI down
                logger.warning("tool plugin %r failed to load: %s", ep.name, exc)
                continue
            yield from found

    def __repr__(self) -> str:
        return f"EntryPointTools({self.group!r})"


def _plugin_tools(ep: EntryPoint) -> list[Tool]:
    module = ep.load()
    scratch = ToolRegistry()
    for item in tools_in(module):
        scratch.add(item)
    hook: Callable[[ToolRegistry], None | Awaitable[None]] | None = getattr(module, "register_tools", None)
    if hook is not None:
        hook(scratch)
    if not len(scratch):
        logger.warning("tool plugin %r has neither register_tools(registry) nor @tool functions", ep.name)
    return list(scratch)
