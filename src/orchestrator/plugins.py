"""Tool plugins: packages that declare an entry point in the ``orchestrator.tools`` group, as a tool source.

The entry point names a module that has ``register_tools(registry)`` (called with an empty registry whose
tools are then taken), or that describes its tools with :func:`orchestrator.registry.tool`, or both.
A plugin that fails to load is one warning and is left out: a broken plugin never takes the CLI down.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from orchestrator.registry import Tool, ToolRegistry, tools_in

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["ENTRY_POINT_GROUP", "EntryPointTools"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "orchestrator.tools"


class EntryPointTools:
    """The tools of every installed plugin in an entry-point group (default ``orchestrator.tools``)."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self.name = f"entry points {group!r}"

    def tools(self) -> Iterator[Tool]:
        if not declared_anywhere(self.group):
            return
        from importlib.metadata import entry_points  # costs tens of ms to import: only when a plugin is there

        for ep in entry_points(group=self.group):
            try:
                found = _plugin_tools(ep)
            except Exception as exc:  # a broken plugin must not take the CLI down
                logger.warning("tool plugin %r failed to load: %s", ep.name, exc)
                continue
            yield from found

    def __repr__(self) -> str:
        return f"EntryPointTools({self.group!r})"


def declared_anywhere(group: str) -> bool:
    """Whether any installed distribution may declare entry points in `group`.

    A quick look at the ``entry_points.txt`` files of the ``*.dist-info`` and ``*.egg-info`` folders on
    ``sys.path`` (where :mod:`importlib.metadata` finds them), so the CLI starts without importing it when no
    plugin is installed. Anything it cannot read as a plain folder (a zip on the path) counts as a yes.
    """
    header = re.compile(rf"^\s*\[\s*{re.escape(group)}\s*\]", re.MULTILINE)
    for entry in sys.path:
        folder = entry or os.getcwd()
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return True  # a zip or something else importlib.metadata may read: let it look
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), encoding="utf-8") as f:
                    if header.search(f.read()):
                        return True
            except OSError:
                continue
    return False


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
