"""Choosing the isolation (once per process), pre-started single-use sandboxes, and :func:`run_code`.

Starting bwrap and Python takes tens of milliseconds; a :class:`SandboxPool` keeps ``size`` sandboxes
started and waiting for their one request, and starts a replacement as soon as one is taken. A sandbox is
never given a second request: each call gets a fresh process, a fresh work folder and a fresh uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.sandbox.launcher import (
    STARTUP_TIMEOUT_S,
    Isolation,
    Sandbox,
    SandboxConfig,
    SandboxReply,
    interpreter_prefix,
    reap_orphans,
)
from orchestrator.sandbox.limits import CodeLimits

__all__ = ["ISOLATION_MODES", "SandboxPool", "reset_probes", "resolve_config", "run_code", "start_sandbox"]

logger = logging.getLogger(__name__)

ISOLATION_MODES = ("auto", "strict", "process")
"""``CODE_EXEC_ISOLATION``: auto (bwrap when it works, else process-level with a warning), strict (bwrap or
refuse), process (process-level only)."""

_probes: dict[tuple[str, str, str, bool], str | None] = {}
_warned: set[str] = set()


def reset_probes() -> None:
    """Forget what was found about bwrap (tests change the settings between cases)."""
    _probes.clear()
    _warned.clear()


async def _probe_bwrap(config: SandboxConfig) -> str | None:
    """Why a bwrap sandbox cannot run here (None: it can): start one and run a snippet in it."""
    sandbox = Sandbox(config)
    try:
        await sandbox.start()
        reply = await sandbox.run("result = 6 * 7", {}, CodeLimits(timeout_s=20))
    except (ToolError, OSError) as exc:
        return str(exc)
    finally:
        await sandbox.close()
    if not reply.ok or reply.result != 42:
        return f"a test snippet failed: {reply.error.message if reply.error else reply.result!r}"
    return None


async def resolve_config(
    *, isolation: str = "auto", bwrap: str = "bwrap", python: str | None = None, disk_mb: int = 32
) -> SandboxConfig:
    """The sandbox configuration in force: bwrap when usable (probed once per process), else the fallback.

    Raises:
        ConfigurationError: `isolation` is unknown, the interpreter cannot be found, or it is ``strict``
            and bwrap is missing or does not work here.
    """
    if isolation not in ISOLATION_MODES:
        raise ConfigurationError(f"CODE_EXEC_ISOLATION={isolation!r}: expected one of {', '.join(ISOLATION_MODES)}")
    try:
        interpreter, prefix = await asyncio.to_thread(interpreter_prefix, python)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"CODE_EXEC_PYTHON={python!r}: cannot run that interpreter ({exc})") from None
    root = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    base = SandboxConfig(
        isolation=Isolation.PROCESS, python=interpreter, python_prefix=prefix, disk_mb=disk_mb, setpriv=setpriv
    )
    if root and "reaped" not in _warned:  # once per process: what orchestrators that died left behind
        _warned.add("reaped")
        await asyncio.to_thread(reap_orphans, base)
    if isolation != "process":
        found = shutil.which(bwrap)
        key = (bwrap, interpreter, prefix, root)
        if key not in _probes:  # two first calls at once may both probe: harmless
            if found is None:
                _probes[key] = f"{bwrap!r} not found (install it: apt-get install bubblewrap)"
            elif root and setpriv is None:
                _probes[key] = "setpriv (util-linux) not found, needed to drop root in the sandbox"
            else:
                probe = replace(base, isolation=Isolation.BWRAP, bwrap=found, setpriv=setpriv, drop_uid=root)
                _probes[key] = await _probe_bwrap(probe)
        reason = _probes[key]
        if reason is None:
            return replace(base, isolation=Isolation.BWRAP, bwrap=found, setpriv=setpriv, drop_uid=root)
        if isolation == "strict":
            raise ConfigurationError(
                f"CODE_EXEC_ISOLATION=strict: full isolation is not available: {reason}; "
                "install bubblewrap or set CODE_EXEC_ISOLATION=auto"
            )
        if reason not in _warned:
            _warned.add(reason)
            logger.warning(
                "code_exec: REDUCED ISOLATION: bubblewrap cannot be used (%s); sandboxed code runs with "
                "process-level limits only (it can read what its uid can read and reach the network). "
                "Set CODE_EXEC_ISOLATION=strict to refuse instead.",
                reason,
            )
    from orchestrator.sandbox.launcher import world_accessible

    drop = root and world_accessible(interpreter)
    if root and not drop and "uid" not in _warned:
        _warned.add("uid")
        logger.warning(
            "code_exec: %s is not readable by other users, so process-level sandboxes run as root: the "
            "process count is not limited and a detached process may outlive its call (set CODE_EXEC_PYTHON "
            "to an interpreter every user can run, e.g. /usr/bin/python3)",
            interpreter,
        )
    return replace(base, drop_uid=drop)


async def start_sandbox(config: SandboxConfig) -> Sandbox:
    """Start a sandbox; a cancellation waits for the start to finish, then ends the sandbox and goes on.

    Cancelling asyncio's process creation midway can hang it (CPython 3.11), and a process started for a
    cancelled call must not be left running.
    """
    task = asyncio.ensure_future(Sandbox(config).start())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            sandbox = await task
            await sandbox.close()
        raise


class SandboxPool:
    """Up to `size` started sandboxes of one configuration, each handed out once."""

    def __init__(self, config: SandboxConfig, size: int = 2):
        self.config = config
        self.size = size
        self._waiting: deque[Sandbox] = deque()
        self._starting: set[asyncio.Task[Sandbox]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.started = 0

    def _fill(self) -> None:
        while not self._closed and len(self._waiting) + len(self._starting) < self.size:
            task = asyncio.ensure_future(Sandbox(self.config).start())
            self._starting.add(task)
            task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[Sandbox]) -> None:
        self._starting.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            logger.warning("code_exec: a pre-started sandbox failed to start: %s", task.exception())
            return
        sandbox = task.result()
        self.started += 1
        if self._closed:
            self._close_later(sandbox)
        else:
            self._waiting.append(sandbox)

    def _close_later(self, sandbox: Sandbox) -> None:
        sandbox.kill()
        task = asyncio.ensure_future(sandbox.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def warm(self) -> None:
        """Start the pool and wait until every pre-started sandbox is ready."""
        self._fill()
        while self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.gather(*(s.wait_ready() for s in list(self._waiting)), return_exceptions=True)

    async def take(self) -> Sandbox:
        """A started sandbox for one request; give it back with :meth:`done` (which ends it)."""
        if self._closed:
            raise RuntimeError("the sandbox pool is closed")
        while self._waiting:
            candidate = self._waiting.popleft()
            if not _failed(candidate):
                return candidate
            await candidate.close()
        return await start_sandbox(self.config)

    def done(self, sandbox: Sandbox) -> None:
        """End a used sandbox (killed now, reaped in the background) and start its replacement.

        The replacement starts after the call, not when the sandbox is taken, so that starting it does not
        compete for the CPU with the call it would only serve later.
        """
        self._close_later(sandbox)
        self._fill()

    @asynccontextmanager
    async def sandbox(self) -> AsyncIterator[Sandbox]:
        """``async with pool.sandbox() as sandbox:`` one pre-started sandbox, ended afterwards."""
        sandbox = await self.take()
        try:
            yield sandbox
        finally:
            self.done(sandbox)

    async def aclose(self) -> None:
        """Stop filling and end every waiting and starting sandbox."""
        self._closed = True
        if self._starting:
            # Let starts finish rather than cancel them: cancelling asyncio's process creation midway can hang
            # it (CPython 3.11). A start is bounded; once done, `_started` ends the sandbox.
            _, pending = await asyncio.wait(list(self._starting), timeout=STARTUP_TIMEOUT_S)
            for task in pending:
                task.cancel()
        while self._waiting:
            await self._waiting.popleft().close()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _failed(sandbox: Sandbox) -> bool:
    ready = sandbox._ready
    return ready is not None and ready.done() and (ready.cancelled() or ready.exception() is not None)


async def run_code(
    code: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    limits: CodeLimits | None = None,
    files: Mapping[str, str] | None = None,
    config: SandboxConfig | None = None,
    pool: SandboxPool | None = None,
) -> SandboxReply:
    """Run Python `code` once in a fresh sandbox and return its reply (the result or the code's error).

    Args:
        code: Python source; the value of ``result`` (or what ``main()`` returns) is the result.
        inputs: JSON values bound as variables.
        limits: the call's limits (default :class:`CodeLimits`).
        files: name -> base64 content, written read-only into ``files/`` of the work folder.
        config: how to isolate (default: :func:`resolve_config` with its defaults).
        pool: take a pre-started sandbox from this pool (its config wins; a call whose ``disk_mb`` differs
            from the pool's gets a sandbox of its own).

    Raises:
        ToolError: the sandbox timed out, died, broke a limit, or could not start.
    """
    limits = limits or CodeLimits()
    if pool is not None and pool.config.disk_mb == limits.disk_mb:
        async with pool.sandbox() as sandbox:
            return await sandbox.run(code, inputs or {}, limits, files)
    # The work folder's size is fixed when a sandbox starts: another size needs a sandbox of its own.
    config = config or (pool.config if pool is not None else await resolve_config())
    config = replace(config, disk_mb=limits.disk_mb)
    sandbox = await start_sandbox(config)
    try:
        return await sandbox.run(code, inputs or {}, limits, files)
    finally:
        await asyncio.shield(sandbox.close())
