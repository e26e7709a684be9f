"""One live session with one MCP server: started lazily, shared by every call of a run, restarted after a crash.

The SDK's :class:`mcp.Client` is an async context manager whose transport (a child process on our stdio
wire, :class:`~orchestrator.mcp_bridge.wire.StdioProcess`, or the SDK's HTTP client) must be entered and left
by the same task. A run's steps are many tasks, so a background *owner* task holds the client open; calls from
any task go through the session, which is made for concurrent requests. :meth:`McpConnection.aclose` tells the
owner to leave the client, which closes the server's stdin, waits, then terminates and kills its whole process
group (shielded from cancellation, every wait bounded), so nothing is left running after a run, a failure,
Ctrl-C or SIGTERM.

With ``protocol: handshake`` (our own server) the client speaks the 2025 handshake era: one ``initialize`` per
connection, then requests without the 2026 era's per-request envelope, which costs our server a fresh
connection object and runner per call.

Every failure becomes one :class:`~orchestrator.errors.ToolError` naming the server and the tool: not
installed, failed to start (with the last lines it wrote on stderr), did not answer in time, crashed
mid-call, or answered with a tool error. A crashed stdio server is started again for later calls, at
most ``max_restarts`` times per connection.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import IO, Any

import anyio
from pydantic import ValidationError

from orchestrator.errors import ToolError, ToolTimeout
from orchestrator.mcp_bridge.config import ServerConfig

__all__ = ["McpConnection", "describe_exception"]

logger = logging.getLogger(__name__)

_STDERR_TAIL = 600  # characters of the server's stderr quoted in an error


def describe_exception(exc: BaseException) -> str:
    """One line for an exception, looking inside exception groups (the SDK's task groups raise them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    if not text or text == "None":
        return type(exc).__name__
    return text.splitlines()[0] if len(text) > 300 else " ".join(text.split())


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class _Session:
    """One started server: its client, the tools it listed, and the owner task that holds it open."""

    __slots__ = ("client", "dead", "errlog", "owner", "stop", "timed_out", "tools")

    def __init__(self) -> None:
        self.client: Any = None
        self.tools: list[Any] = []
        self.stop = asyncio.Event()
        self.owner: asyncio.Task[None] | None = None
        self.errlog: IO[str] | None = None
        self.dead = False
        self.timed_out = False


class McpConnection:
    """A lazily started, shared, restartable connection to one configured MCP server."""

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        *,
        headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        on_tools: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """Describe the connection; nothing starts until the first call.

        Args:
            name: The server's name in the config (it prefixes its tools' names).
            config: How to reach it, and its limits.
            headers: Extra HTTP headers (over the config's), e.g. a bearer token.
            env: Extra environment for a stdio server (over the config's).
            on_tools: Called with the tool listing each time the server starts (the tool-list cache).
        """
        self.name = name
        self.config = config
        self._headers = {**config.headers, **(headers or {})}
        self._env = {**config.env, **(env or {})}
        self._on_tools = on_tools
        self._session: _Session | None = None
        self._starting: asyncio.Future[_Session] | None = None
        self._limit: asyncio.Semaphore | None = None
        self._fatal: ToolError | None = None  # a start failure that another attempt cannot fix
        self._owners: dict[asyncio.Task[None], _Session] = {}
        self.starts = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"McpConnection({self.name!r}, {self.config.transport})"

    # --- starting and stopping ----------------------------------------------------------------------

    async def tools(self) -> list[Any]:
        """The server's tools (``mcp.types.Tool``), as listed when the session started."""
        return (await self._ready(None)).tools

    async def _ready(self, tool: str | None) -> _Session:
        session = self._session
        if session is not None and not session.dead:
            return session
        if self.closed:
            raise ToolError(f"{self._who(tool)}: the connection is closed (the run is over)")
        if self._fatal is not None:
            raise self._fatal
        if self._starting is None:
            if self.starts > self.config.max_restarts:
                raise ToolError(
                    f"{self._who(tool)}: the server stopped {self.starts} times; not restarting it again "
                    f"(max_restarts={self.config.max_restarts})"
                )
            self._starting = asyncio.get_running_loop().create_future()
            self.starts += 1
            session = _Session()
            owner = asyncio.get_running_loop().create_task(self._own(session, self._starting))
            session.owner = owner
            self._owners[owner] = session
            owner.add_done_callback(lambda task: self._owners.pop(task, None))
        starting = self._starting
        try:
            # shield: one caller's cancellation must not cancel the start the other callers wait for
            return await asyncio.shield(starting)
        except ToolError as exc:
            raise ToolError(f"{self._who(tool)}: {_after_prefix(str(exc))}", retryable=exc.retryable) from None
        finally:
            if starting.done() and self._starting is starting:
                self._starting = None

    async def _own(self, session: _Session, started: asyncio.Future[_Session]) -> None:
        """The owner task: open the client, publish the session, hold it until told to stop, then close it."""
        # The start is bounded by cancelling this task: a cancel scope around entering the client would
        # be left before the client's own task groups, which anyio forbids.
        timer = asyncio.get_running_loop().call_later(self.config.connect_timeout_s, self._start_timeout, session)
        try:
            async with AsyncExitStack() as stack:
                client = await self._open(session, stack)
                session.client = client
                session.tools = await _list_all_tools(client)
                timer.cancel()
                if self._on_tools is not None:
                    try:
                        self._on_tools(session.tools)
                    except Exception:  # the cache is an optimisation; never fail a call for it
                        logger.warning("could not cache the tools of MCP server %r", self.name, exc_info=True)
                self._session = session
                if not started.done():
                    started.set_result(session)
                await session.stop.wait()
        except BaseException as exc:
            timer.cancel()
            session.dead = True
            error: BaseException = TimeoutError() if session.timed_out else exc
            if not started.done():
                started.set_exception(self._start_error(error, session))
            if isinstance(exc, asyncio.CancelledError) and not session.timed_out:
                raise
        finally:
            session.dead = True
            if session.errlog is not None:
                session.errlog.close()

    async def _open(self, session: _Session, stack: AsyncExitStack) -> Any:
        from mcp import Client

        config = self.config
        if config.command is not None:
            from mcp.client.stdio import get_default_environment

            from orchestrator.mcp_bridge.wire import StdioProcess

            if shutil.which(config.command) is None and "/" not in config.command:
                self._fatal = ToolError(
                    f"{self._who(None)}: cannot start: command {config.command!r} not found on PATH (is it installed?)"
                )
                raise self._fatal
            session.errlog = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
            env = get_default_environment() | self._env
            transport: Any = StdioProcess(config.command, config.args, env=env, cwd=config.cwd, stderr=session.errlog)
        else:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            assert config.url is not None
            http = await stack.enter_async_context(create_mcp_http_client(headers=self._headers or None))
            transport = streamable_http_client(config.url, http_client=http)
        mode = "legacy" if config.protocol == "handshake" else "auto"
        client = Client(transport, cache=None, read_timeout_seconds=config.timeout_s, mode=mode)
        await stack.enter_async_context(client)
        return client

    def _start_timeout(self, session: _Session) -> None:
        """Called when the start took too long (the timer is cancelled once the tools are listed)."""
        session.timed_out = True
        if session.owner is not None:
            session.owner.cancel()

    def _start_error(self, exc: BaseException, session: _Session) -> BaseException:
        if isinstance(exc, ToolError):
            return exc
        leaf = _leaf(exc)
        if isinstance(leaf, asyncio.CancelledError):
            return ToolError(f"{self._who(None)}: start cancelled")
        if isinstance(leaf, TimeoutError):
            message = f"did not answer within {self.config.connect_timeout_s:g}s of starting"
        elif isinstance(leaf, FileNotFoundError | PermissionError):
            self._fatal = ToolError(f"{self._who(None)}: cannot start {self.config.command!r}: {leaf}")
            return self._fatal
        elif self.config.transport == "http" and _is_connect_error(leaf):
            message = f"cannot reach {self.config.url}: {describe_exception(leaf)}"
        else:
            message = f"failed to start: {describe_exception(leaf)}"
        return ToolError(f"{self._who(None)}: {message}{self._stderr_tail(session)}", retryable=True)

    async def aclose(self) -> None:
        """Stop the server (or leave the HTTP session); waits until its process is gone. Idempotent."""
        self.closed = True
        self._session = None
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()
        owners = dict(self._owners)
        for owner, session in owners.items():
            session.stop.set()
            if session.client is None:  # still starting: nothing to wait for, stop it now
                owner.cancel()
        with anyio.CancelScope(shield=True):
            for owner in owners:
                try:
                    await owner
                except BaseException:
                    logger.debug("MCP server %r closed with an error", self.name, exc_info=True)

    def _retire(self, session: _Session) -> None:
        """Forget a session that died; the next call starts the server again (within max_restarts)."""
        session.dead = True
        session.stop.set()
        if self._session is session:
            self._session = None

    # --- calls --------------------------------------------------------------------------------------

    async def call(self, tool: str, args: Mapping[str, Any], meta: dict[str, Any] | None = None) -> Any:
        """Call `tool` with `args` (and `meta` as the request's ``_meta``); returns the SDK's ``CallToolResult``
        (errors raised as ToolError)."""
        from mcp.shared.exceptions import MCPError

        if self._limit is None:
            self._limit = asyncio.Semaphore(self.config.concurrency)
        async with self._limit:
            session = await self._ready(tool)
            try:
                with anyio.fail_after(self.config.timeout_s):
                    return await session.client.call_tool(tool, dict(args), meta=meta)
            except TimeoutError:
                raise ToolTimeout(f"{self._who(tool)}: no answer within {self.config.timeout_s:g}s") from None
            except MCPError as exc:
                if _is_closed(exc):
                    self._retire(session)
                    raise self._crashed(tool, session) from None
                raise ToolError(f"{self._who(tool)}: {exc.message} (MCP error {exc.code})") from None
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError):
                self._retire(session)
                raise self._crashed(tool, session) from None
            except ValidationError as exc:
                message = f"the server's answer is malformed: {describe_exception(exc)}"
                raise ToolError(f"{self._who(tool)}: {message}") from None
            except RuntimeError as exc:  # the SDK checks structured output against the tool's output schema
                raise ToolError(f"{self._who(tool)}: {describe_exception(exc)}") from None

    def _crashed(self, tool: str, session: _Session) -> ToolError:
        left = self.config.max_restarts + 1 - self.starts
        again = f"; it is restarted for later calls ({left} restart{'s' if left != 1 else ''} left)" if left > 0 else ""
        where = "crashed or closed the connection" if self.config.transport == "stdio" else "closed the connection"
        return ToolError(
            f"{self._who(tool)}: the server {where} during the call{again}{self._stderr_tail(session)}",
            retryable=left > 0,
        )

    # --- helpers ------------------------------------------------------------------------------------

    def _who(self, tool: str | None) -> str:
        return f"mcp server {self.name!r}" + (f", tool {tool!r}" if tool else "")

    def _stderr_tail(self, session: _Session) -> str:
        log = session.errlog
        if log is None or log.closed:
            return ""
        try:
            log.flush()
            log.seek(0)
            text = log.read()[-_STDERR_TAIL:].strip()
        except (OSError, ValueError):
            return ""
        return f" (its stderr ends: {' | '.join(text.splitlines()[-5:])})" if text else ""


def _after_prefix(message: str) -> str:
    """The part of an error after its ``mcp server 'x'[, tool 'y']: `` prefix."""
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith("mcp server ") else message


def _is_closed(exc: Any) -> bool:
    from mcp_types import CONNECTION_CLOSED

    return bool(exc.code == CONNECTION_CLOSED)


def _is_connect_error(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, OSError) or name in {"ConnectError", "ConnectTimeout", "RemoteProtocolError"}


async def _list_all_tools(client: Any) -> list[Any]:
    """Every tool of the server, following pagination (bounded)."""
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools
