"""The code sandbox as a tool source: ``code_exec``, configured by the settings in force when asked.

It is light to import: the tool is built when a registry first gets it (a :class:`DeferredTool`), and the
launcher and the pool (asyncio, subprocesses) load only when a step runs.
"""

from __future__ import annotations

from orchestrator.registry import DeferredTool, Tool
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

    def tools(self) -> list[DeferredTool]:
        settings = self._settings or current_settings()
        return [DeferredTool("code_exec", lambda: _code_exec(settings))]

    def __repr__(self) -> str:
        return "SandboxTools()"


def _code_exec(settings: Settings) -> Tool:
    from orchestrator.sandbox.tool import CodeExecTool

    return CodeExecTool(settings)
