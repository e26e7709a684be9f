"""``mcp_servers.json``: the MCP servers whose tools plans may call, in the shape MCP hosts use.

```json
{"mcpServers": {
    "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
    "git":  {"command": "mcp-server-git", "args": ["--repository", "."], "env": {"GIT_PAGER": "cat"},
             "timeout_s": 30, "concurrency": 2},
    "docs": {"url": "http://127.0.0.1:8931/mcp", "headers": {"Authorization": "Bearer ..."}}
}}
```

A server with ``command`` is started over stdio (``args``, ``env`` merged over a minimal safe
environment, ``cwd``); one with ``url`` is reached over streamable HTTP (``headers`` sent with every
request). Our own keys, all optional: ``timeout_s`` (seconds per tool call, 60), ``connect_timeout_s``
(seconds to start and list tools, 30), ``concurrency`` (calls in flight at once, 8), ``max_restarts``
(times a crashed stdio server is started again in one run, 2), ``disabled``, and ``protocol`` (``auto``, or
``handshake`` to skip the SDK's probe for the 2026 protocol era: cheaper per call with a server that serves
both). Unknown keys that hosts use (``type``, ``alwaysAllow``...) are accepted and ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import ConfigurationError

__all__ = ["McpConfig", "ServerConfig", "load_config", "parse_config"]

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""A server's name becomes the prefix of its tools' names (``<server>.<tool>``): no dots, no spaces."""


class ServerConfig(BaseModel):
    """One MCP server: how to reach it, and our limits for it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="seconds per tool call")
    connect_timeout_s: float = Field(default=30.0, gt=0, le=600, description="seconds to start and list tools")
    concurrency: int = Field(default=8, ge=1, le=256, description="tool calls in flight at once")
    max_restarts: int = Field(default=2, ge=0, le=20, description="restarts of a crashed stdio server per run")
    disabled: bool = False
    protocol: Literal["auto", "handshake"] = Field(
        default="auto",
        description="auto: the newest protocol era the server serves (the SDK asks it); handshake: the 2025 "
        "initialize handshake, one per connection, then requests without a per-request envelope",
    )

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("needs either 'command' (stdio) or 'url' (streamable HTTP), not both or neither")
        if self.command is not None and not self.command.strip():
            raise ValueError("'command' is empty")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"'url' must start with http:// or https://, not {self.url!r}")
        return self

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command is not None else "http"

    def fingerprint(self) -> str:
        """A hash of what decides which tools the server offers (for the tool-list cache)."""
        keys = {"command": self.command, "args": self.args, "env": self.env, "cwd": self.cwd, "url": self.url}
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


class McpConfig(BaseModel):
    """The whole file: servers by name."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    servers: dict[str, ServerConfig] = Field(default_factory=dict, alias="mcpServers")
    origin: str | None = Field(default=None, exclude=True)

    def enabled(self) -> dict[str, ServerConfig]:
        """The servers not marked ``disabled``."""
        return {name: server for name, server in self.servers.items() if not server.disabled}


def parse_config(text: str, *, origin: str = "mcp_servers.json") -> McpConfig:
    """Parse the text of an ``mcp_servers.json``; errors name the file, the server and the field.

    Raises:
        ConfigurationError: the text is not JSON, or not of the expected shape.
    """
    from orchestrator.plan.source import locate

    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{origin}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise ConfigurationError(f'{origin}: expected {{"mcpServers": {{"name": {{"command": ...}}}}}}')
    positions = locate(text)
    for name in data["mcpServers"]:
        if not SERVER_NAME.match(name):
            where = _where(origin, positions, ("mcpServers", name))
            raise ConfigurationError(
                f"{where}server name {name!r}: use letters, digits, '_' and '-' (it prefixes its tools' names)"
            )
    try:
        config = McpConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        path: tuple[str | int, ...] = ("mcpServers", *loc[1:]) if loc and loc[0] == "mcpServers" else loc
        where = _where(origin, positions, path)
        server = f"server {path[1]!r}" if len(path) > 1 else "mcpServers"
        field = f" field {'.'.join(str(p) for p in path[2:])!r}" if len(path) > 2 else ""
        raise ConfigurationError(f"{where}{server}{field}: {error['msg']}") from None
    return config.model_copy(update={"origin": origin})


def load_config(path: Path) -> McpConfig:
    """Read an ``mcp_servers.json`` file.

    Raises:
        ConfigurationError: the file is missing, unreadable or malformed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such MCP config file (ORCHESTRATOR_MCP_CONFIG or --mcp-config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the MCP config: {exc}") from None
    return parse_config(text, origin=str(path))


def _where(origin: str, positions: dict[tuple[str | int, ...], tuple[int, int]], path: tuple[Any, ...]) -> str:
    while path and path not in positions:
        path = path[:-1]
    pos = positions.get(path)
    return f"{origin}:{pos[0]}:{pos[1]}: " if pos else f"{origin}: "
