"""Newline-delimited JSON-RPC on a pair of pipes, read and written by the event loop: the stdio wire.

The SDK's stdio transports put two in-memory streams and two pipe tasks (or worker threads) between the
pipes and its dispatcher, so every message makes one or two extra task switches on each side. Its
:class:`~mcp.server.lowlevel.Server` and :class:`~mcp.Client` take any pair of objects that follow its
``ReadStream`` / ``WriteStream`` protocols, so these two classes are the whole transport: a read parses
one line into a ``SessionMessage`` in the task that asked for it, a send serialises and writes in the task
that sends. Messages are written whole by one ``write`` call each, so concurrent senders never interleave.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio

__all__ = ["MAX_LINE", "LineReader", "LineWriter"]

MAX_LINE = 256 * 1024 * 1024
"""Longest message, in bytes (one JSON-RPC message per line; plans and results can be large)."""


class LineReader:
    """``ReadStream[SessionMessage | Exception]`` over an ``asyncio.StreamReader``: one message per line.

    A line that is not a JSON-RPC message is returned as its exception (as the SDK's transports do), so
    the dispatcher can answer or log it; end of file ends the iteration. ``push_back`` puts a message
    back to be read again first (used to look at a connection's first message before choosing how to
    serve it).
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        from mcp.shared.message import SessionMessage
        from mcp.types import jsonrpc_message_adapter

        self._reader = reader
        self._pushed: list[Any] = []
        self._closed = False
        self._message = SessionMessage
        self._parse = jsonrpc_message_adapter.validate_json

    def push_back(self, item: Any) -> None:
        self._pushed.append(item)

    async def receive(self) -> Any:
        if self._pushed:
            return self._pushed.pop()
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                line = await self._reader.readline()
            except ValueError as exc:  # longer than MAX_LINE: the reader dropped it
                return ValueError(f"message longer than {MAX_LINE} bytes dropped ({exc})")
            except (ConnectionError, OSError) as exc:
                raise anyio.BrokenResourceError from exc
            if not line:
                raise anyio.EndOfStream
            if line.isspace():
                continue
            try:
                return self._message(self._parse(line, by_name=False))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                return exc

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> LineReader:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class LineWriter:
    """``WriteStream[SessionMessage]`` over an ``asyncio.StreamWriter``: each message one line, one write."""

    def __init__(self, writer: asyncio.StreamWriter, *, close_transport: bool = False) -> None:
        """Args:
        writer: The pipe.
        close_transport: Close the pipe itself on :meth:`aclose` (a client closing a server's stdin).
        """
        self._writer = writer
        self._close_transport = close_transport
        self._closed = False

    async def send(self, item: Any, /) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        data = item.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
        try:
            self._writer.write(data)
            await self._writer.drain()  # returns at once unless the pipe is full
        except (ConnectionError, OSError, RuntimeError) as exc:  # RuntimeError: the transport is closing
            self._closed = True
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._close_transport:
            self._writer.close()

    async def __aenter__(self) -> LineWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class StdioProcess:
    """An MCP server started over stdio: the SDK's ``Transport`` (an async context manager yielding the read
    and write streams) on :class:`LineReader` / :class:`LineWriter`.

    The server runs in a new session, so in its own process group. Leaving the context (however it is left:
    the run ended, failed, was cancelled) stops it as MCP's lifecycle says, shielded from cancellation and
    bounded at every step: close its stdin, give it ``grace_s`` to exit, then SIGTERM its whole process group
    and, after ``grace_s`` more, SIGKILL it. Whatever is still in its group once it has exited (a child it
    left behind) is killed too.
    """

    def __init__(
        self,
        command: str,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: str | None = None,
        stderr: Any = None,
        grace_s: float = 2.0,
    ) -> None:
        self.command = command
        self.args = args
        self.env = env
        self.cwd = cwd
        self.stderr = stderr
        self.grace_s = grace_s
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    async def __aenter__(self) -> tuple[LineReader, LineWriter]:
        self.process = await asyncio.create_subprocess_exec(
            *dies_with_parent([self.command, *self.args], self.env, self.cwd),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            limit=MAX_LINE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._writer = LineWriter(self.process.stdin, close_transport=True)
        return LineReader(self.process.stdout), self._writer

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            with anyio.CancelScope(shield=True):
                await self._writer.aclose()
                await stop_process_group(self.process, self.grace_s)


def dies_with_parent(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> list[str]:
    """`argv`, run so that the kernel sends it SIGTERM when this process dies, even by SIGKILL (Linux: util-linux's
    ``setpriv --pdeathsig``, which then execs the program under the same pid). Unchanged elsewhere, without
    setpriv, or when the program cannot be found (so that starting it fails as it would have, naming it); a
    stdio server still sees its stdin close, and the process-group stop covers every other way out."""
    import shutil

    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    program = _program(argv[0], env, cwd) if setpriv else None
    return [setpriv, "--pdeathsig", "TERM", "--", program, *argv[1:]] if setpriv and program else list(argv)


def _program(command: str, env: Mapping[str, str] | None, cwd: str | None) -> str | None:
    """The executable file `command` names, looked up as the child would (its PATH, its working folder), or None."""
    import os
    import shutil

    if os.sep in command:
        path = os.path.join(cwd or os.getcwd(), command)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    return shutil.which(command, path=search)


async def stop_process_group(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """Wait up to `grace_s` for `process` (a process-group leader whose stdin was closed) to exit, then SIGTERM
    its group, then SIGKILL it; finally SIGKILL whatever is left in the group. Every wait is bounded."""
    import os
    import signal

    def signal_group(sig: int) -> bool:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def exited(within: float) -> bool:
        # Not process.wait(): since 3.11 it also waits for the pipes to close, which a grandchild holding
        # them open would delay for ever.
        with anyio.move_on_after(within):
            while process.returncode is None:
                await asyncio.sleep(0.01)
        return process.returncode is not None

    if not await exited(grace_s):
        signal_group(signal.SIGTERM)
        if not await exited(grace_s):
            signal_group(signal.SIGKILL)
            await exited(grace_s)
    signal_group(signal.SIGKILL)  # children the server left in its group
