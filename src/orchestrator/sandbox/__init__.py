"""Sandboxed code execution: the ``code_exec`` tool runs model-written Python behind the OS's boundaries.

- :mod:`~orchestrator.sandbox.limits`: what one call may use, run defaults and the operator's maxima
- :mod:`~orchestrator.sandbox.launcher`: one sandbox process (bubblewrap, or process-level limits only)
- :mod:`~orchestrator.sandbox.pool`: the isolation in force, pre-started single-use sandboxes, ``run_code``
- :mod:`~orchestrator.sandbox.tool`: the ``code_exec`` tool and ``sandbox_tools(settings)``

Only the limits are imported eagerly (the settings use them); the rest loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.sandbox.limits import CodeLimits, LimitError

if TYPE_CHECKING:
    from orchestrator.sandbox.launcher import Isolation, Sandbox, SandboxConfig, SandboxReply
    from orchestrator.sandbox.pool import SandboxPool, resolve_config, run_code
    from orchestrator.sandbox.tool import CodeExecTool, sandbox_tools

__all__ = [
    "CodeExecTool",
    "CodeLimits",
    "Isolation",
    "LimitError",
    "Sandbox",
    "SandboxConfig",
    "SandboxPool",
    "SandboxReply",
    "resolve_config",
    "run_code",
    "sandbox_tools",
]

_LAZY = {
    "Isolation": "launcher",
    "Sandbox": "launcher",
    "SandboxConfig": "launcher",
    "SandboxReply": "launcher",
    "SandboxPool": "pool",
    "resolve_config": "pool",
    "run_code": "pool",
    "CodeExecTool": "tool",
    "sandbox_tools": "tool",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator.sandbox' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"orchestrator.sandbox.{module}"), name)
