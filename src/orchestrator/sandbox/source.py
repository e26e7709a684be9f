"""The code sandbox as a tool source: ``code_exec``, configured by the settings in force when asked.

It is light to import (the launcher, the pool and the tool load when the registry is assembled), so
``orchestrator --help`` does not pay for it.
"""

from __future__ import annotations

from orchestrator.registry import Tool
from orchestrator.settings import Settings, current_settings

__all__ = ["SandboxTools"]


class SandboxTools:
    """The sandbox's tools (``code_exec``). Sandboxes belong to runs (a pool per run scope), so there is
    nothing to close here."""

    name = "sandbox"

    def __init__(self, settings: Settings | None = None) -> None:
        """Args:
        settings: the sandbox's configuration; None reads the settings in force when the tools are asked for.
        """
        self._settings = settings

    def tools(self) -> list[Tool]:
        from orchestrator.sandbox.tool import sandbox_tools

        return sandbox_tools(self._settings or current_settings())

    def __repr__(self) -> str:
        return "SandboxTools()"
