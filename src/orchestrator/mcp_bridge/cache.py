"""Tool lists of MCP servers cached on disk, so ``validate`` and ``tools`` need not start every server.

One JSON file per server under ``ORCHESTRATOR_HOME/mcp/``, named by the server's name and a hash of
what decides its tools (command, args, env, cwd, url). An entry is used only when it is younger than
:data:`MAX_AGE_S` and, for a stdio server, its executable has not changed since (path, size and mtime:
upgrading the server package invalidates it). Every time a server is started, for a run or for
``orchestrator mcp check``, its fresh listing replaces the entry.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from orchestrator.mcp_bridge.config import ServerConfig

__all__ = ["MAX_AGE_S", "ToolListCache"]

logger = logging.getLogger(__name__)

MAX_AGE_S = 7 * 24 * 3600.0
"""A cached listing older than this is refreshed (HTTP servers can change without our noticing)."""

_VERSION = 1


def _executable_stamp(config: ServerConfig) -> list[Any] | None:
    if config.command is None:
        return None
    found = shutil.which(config.command) or config.command
    try:
        stat = os.stat(found)
    except OSError:
        return [found, None, None]
    return [os.path.realpath(found), stat.st_size, stat.st_mtime_ns]


class ToolListCache:
    """Read and write cached tool listings under one folder."""

    def __init__(self, folder: Path, *, max_age_s: float = MAX_AGE_S) -> None:
        self.folder = folder
        self.max_age_s = max_age_s

    def path(self, name: str, config: ServerConfig) -> Path:
        return self.folder / f"{name}-{config.fingerprint()}.json"

    def load(self, name: str, config: ServerConfig) -> list[Any] | None:
        """The cached tools (``mcp.types.Tool``) of the server, or None when absent or stale."""
        from mcp.types import Tool

        path = self.path(name, config)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return None
        if time.time() - float(data.get("written_at", 0)) > self.max_age_s:
            return None
        if data.get("executable") != _executable_stamp(config):
            return None
        try:
            return [Tool.model_validate(item) for item in data.get("tools", [])]
        except ValueError:
            logger.info("cached tool list %s is malformed; listing the server again", path)
            return None

    def store(self, name: str, config: ServerConfig, tools: list[Any]) -> None:
        """Replace the server's entry with `tools` (written atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {
            "version": _VERSION,
            "server": name,
            "written_at": time.time(),
            "executable": _executable_stamp(config),
            "tools": [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools],
        }
        path = self.path(name, config)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
