"""Starting one sandbox process, talking to it once, and ending it with everything it started.

Two isolation levels (:class:`Isolation`):

- ``bwrap``: bubblewrap puts the process in its own pid, network, IPC, UTS and cgroup namespaces, with a
  read-only ``/usr`` and Python install, a fresh ``/proc`` and minimal ``/dev``, and one writable folder,
  ``/work``: a tmpfs of ``disk_mb`` that disappears with the sandbox. Run as root (as on these machines),
  bwrap keeps only CAP_SETUID/CAP_SETGID for ``setpriv``, which switches to a dedicated unprivileged uid
  with no capabilities and ``no_new_privs`` before Python starts. Run as another user, bwrap uses an
  unprivileged user namespace instead. bwrap itself is started from an empty environment: ``--clearenv``
  alone would leave the launcher's variables readable in the sandbox's ``/proc/1/environ``.
- ``process``: no namespaces, only the process-level layers below. Reduced isolation: the code can read
  what the uid can read and reach the network.

Both: a fresh process per call (never reused), in its own session and process group; ``python -I -S``
(no environment variables, no site-packages, no user site); an environment with only ``HOME``, ``TMPDIR``,
``LC_ALL`` and ``PATH``; resource limits (CPU, address space, file size, open files, processes) lowered by
the bootstrap before the code runs; a wall-clock timeout that kills the whole process group (and, with
bwrap, the pid namespace); and, as root, a dedicated uid per sandbox, leased with a lock file so no two
live sandboxes share one: ``RLIMIT_NPROC`` then holds (it is not enforced for uid 0), and every process
left with that uid is killed when the sandbox ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import pwd
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import ToolError
from orchestrator.sandbox.limits import CodeLimits

__all__ = [
    "CodeError",
    "Isolation",
    "Sandbox",
    "SandboxConfig",
    "SandboxReply",
    "kill_uid",
    "processes_of_uid",
    "reap_orphans",
]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
WORK = "/work"
STARTUP_TIMEOUT_S = 20.0
_BOOTSTRAP = (Path(__file__).parent / "_bootstrap.py").read_text(encoding="utf-8")
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_UNREADABLE = "code_exec: the sandbox's reply is not readable (the code wrote on its reply pipe)"
_SIGNALS: dict[int, str] = {
    signal.SIGXCPU: "used up its CPU time (limit cpu_s)",
    signal.SIGXFSZ: "wrote a file larger than the limit (disk_mb)",
    signal.SIGKILL: "was killed (CPU hard limit or out of memory)",
    signal.SIGSEGV: "crashed (segmentation fault)",
}


class Isolation(StrEnum):
    """How a sandbox is isolated."""

    BWRAP = "bwrap"
    PROCESS = "process"


@dataclass(frozen=True)
class SandboxConfig:
    """What a sandbox is started with (the key of a pool: calls with the same config share one)."""

    isolation: Isolation
    python: str
    python_prefix: str
    bwrap: str | None = None
    setpriv: str | None = None
    drop_uid: bool = False
    disk_mb: int = 32
    # Far above the usual account and /etc/subuid ranges (100000 + 65536 per user), so that no real user's
    # or rootless container's processes are ever counted or killed as a sandbox's.
    uid_base: int = 2_000_000_000
    uid_span: int = 1_000_000
    lock_dir: str = field(default_factory=lambda: str(Path(tempfile.gettempdir()) / "orchestrator-sandbox-uids"))


class CodeError(BaseModel):
    """Why sandboxed code failed, as the bootstrap reported it."""

    model_config = ConfigDict(extra="ignore")

    type: str
    message: str
    line: int | None = None
    column: int | None = None
    traceback: str | None = None


class SandboxReply(BaseModel):
    """One call's outcome: the result or the error, with the captured output."""

    model_config = ConfigDict(extra="ignore")

    ok: bool
    result: Any = None
    error: CodeError | None = None
    stdout: str = ""
    stderr: str = ""


# -- uids ---------------------------------------------------------------------------------------------------


def processes_of_uid(uid: int) -> list[int]:
    """Pids of live (not zombie) processes whose real or effective uid is `uid`."""
    pids: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        uids: list[str] = []
        state = ""
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uids = line.split()[1:3]
            elif line.startswith("State:"):
                state = line.split()[1]
        if str(uid) in uids and state != "Z":
            pids.append(int(entry.name))
    return pids


def kill_uid(uid: int, *, rounds: int = 50) -> int:
    """SIGKILL every process of `uid` until none is left (bounded); returns how many were killed."""
    killed = 0
    for _ in range(rounds):
        pids = processes_of_uid(uid)
        if not pids:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.002)
    logger.warning("sandbox uid %d: processes still alive after %d kill rounds", uid, rounds)
    return killed


def _uid_taken(uid: int) -> bool:
    """Whether `uid` belongs to an account of this machine (never borrow a real user's uid)."""
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


class _UidLease:
    """A uid no other live sandbox (of any orchestrator process on this machine) is using."""

    def __init__(self, config: SandboxConfig):
        lock_dir = Path(config.lock_dir)
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(lock_dir)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise ToolError(f"code_exec: {lock_dir} must be a folder of this user's, closed to others (mode 0700)")
        for _ in range(200):
            uid = config.uid_base + random.randrange(config.uid_span)
            if _uid_taken(uid):
                continue
            fd = os.open(lock_dir / str(uid), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self.uid, self._fd = uid, fd
            kill_uid(uid)  # what a crashed earlier run may have left under this uid
            return
        raise ToolError("code_exec: no free sandbox uid (too many sandboxes at once)", retryable=True)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the lock
            self._fd = -1


def reap_orphans(config: SandboxConfig) -> int:
    """Kill the sandboxes that orchestrator processes which died left behind; returns how many.

    A sandbox's launcher command line names its uid (``--reuid=<uid>``); when the uid's lock can be taken, the
    orchestrator that leased it is gone, and whatever still runs for it is an orphan.
    """
    lock_dir = Path(config.lock_dir)
    if not lock_dir.is_dir():
        return 0
    reaped = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        uid = next((int(a[8:]) for a in argv if a.startswith(b"--reuid=") and a[8:].isdigit()), None)
        if uid is None or not config.uid_base <= uid < config.uid_base + config.uid_span:
            continue
        try:
            fd = os.open(lock_dir / str(uid), os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its orchestrator is alive
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                reaped += 1
            kill_uid(uid)
        finally:
            os.close(fd)
    if reaped:
        logger.warning("code_exec: ended %d sandbox(es) left behind by an orchestrator that died", reaped)
    return reaped


# -- command lines ------------------------------------------------------------------------------------------


def _dirs_for(path: str) -> list[str]:
    """``--perms 0755 --dir`` for each ancestor of a bind target (bwrap would make them 0700)."""
    args: list[str] = []
    parts = Path(path).parts[1:-1]
    for i in range(len(parts)):
        args += ["--perms", "0755", "--dir", "/" + "/".join(parts[: i + 1])]
    return args


def _bwrap_argv(config: SandboxConfig, reply_fd: int, uid: int | None) -> list[str]:
    assert config.bwrap is not None
    argv = [config.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if uid is not None:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_DIRS:
        if os.path.islink(name):
            argv += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            argv += ["--ro-bind", name, name]
    bound = ["/usr", *_SYSTEM_DIRS]
    for path in (config.python_prefix, os.path.dirname(config.python)):
        if not any(path == b or path.startswith(b + "/") for b in bound):
            argv += [*_dirs_for(path), "--ro-bind", path, path]
            bound.append(path)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "0777", "--size", str(config.disk_mb * MIB), "--tmpfs", WORK, "--chdir", WORK]
    argv += ["--clearenv"]
    for name, value in _sandbox_env(WORK).items():
        argv += ["--setenv", name, value]
    argv.append("--")
    if uid is not None:
        assert config.setpriv is not None
        argv += [config.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs"]
        argv += ["--inh-caps=-all", "--bounding-set=-all"]
    return [*argv, *_python_argv(config, reply_fd)]


def _python_argv(config: SandboxConfig, reply_fd: int) -> list[str]:
    return [config.python, "-I", "-S", "-c", _BOOTSTRAP, str(reply_fd)]


def _sandbox_env(work: str) -> dict[str, str]:
    return {"HOME": work, "TMPDIR": work, "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}


# -- one sandbox --------------------------------------------------------------------------------------------


class _Capped:
    """Reads a stream to its end, keeping the first `cap` bytes and counting the rest.

    The sandbox's own stdout and stderr carry only bwrap's and the bootstrap's messages (the code's
    output goes to files in the work folder and comes back in the reply): they explain a failed start.
    """

    def __init__(self, stream: asyncio.StreamReader | None):
        self.cap = 16 * 1024
        self.data = bytearray()
        self.total = 0
        self.task = asyncio.ensure_future(self._drain(stream)) if stream is not None else None

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.total += len(chunk)
            room = self.cap - len(self.data)
            if room > 0:
                self.data += chunk[:room]

    def text(self, name: str) -> str:
        text = bytes(self.data[: self.cap]).decode("utf-8", "replace")
        if self.total > self.cap:
            text += f"\n[... {self.total - self.cap} more bytes of {name} cut]"
        return text

    async def finish(self, timeout: float = 2.0) -> None:
        if self.task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, OSError):
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
            self.task.cancel()


class Sandbox:
    """One sandbox process: start it (ahead of time), run one request in it, end it. Never reused."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self._proc: asyncio.subprocess.Process | None = None
        self._lease: _UidLease | None = None
        self._workdir: str | None = None
        self._reply: asyncio.StreamReader | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._out: _Capped | None = None
        self._err: _Capped | None = None
        self._ready: asyncio.Future[None] | None = None
        self._used = False
        self._closed = False

    @property
    def uid(self) -> int | None:
        """The dedicated uid the code runs as (None when it runs as the orchestrator's own uid)."""
        return self._lease.uid if self._lease is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> Sandbox:
        """Start the process; it gets ready (imports done) in the background."""
        config = self.config
        loop = asyncio.get_running_loop()
        if config.drop_uid:
            self._lease = _UidLease(config)
        uid = self.uid
        read_fd, write_fd = os.pipe()
        kwargs: dict[str, Any] = {}
        try:
            if config.isolation is Isolation.BWRAP:
                argv = _bwrap_argv(config, write_fd, uid)
                env: dict[str, str] = {}
                cwd = "/"
            else:
                self._workdir = cwd = tempfile.mkdtemp(prefix="orchestrator-code-")
                if uid is not None:
                    os.chown(cwd, uid, uid)
                    kwargs = {"user": uid, "group": uid, "extra_groups": []}
                argv = _python_argv(config, write_fd)
                env = _sandbox_env(cwd)
            if config.setpriv is not None:
                # Killed if the orchestrator dies (even by SIGKILL): a pre-started sandbox never outlives it.
                argv = [config.setpriv, "--pdeathsig", "KILL", *argv]
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,
                pass_fds=(write_fd,),
                **kwargs,
            )
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            self._cleanup_sync()
            raise
        os.close(write_fd)
        reader = os.fdopen(read_fd, "rb", 0)
        try:
            reply = self._reply = asyncio.StreamReader(limit=2**31)
            self._transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reply), reader)
        except BaseException:  # cancelled while connecting: the process must not outlive this call
            if self._transport is None:
                reader.close()
            await asyncio.shield(self.close())
            raise
        self._out = _Capped(self._proc.stdout)
        self._err = _Capped(self._proc.stderr)
        self._ready = asyncio.ensure_future(self._handshake())
        return self

    async def _handshake(self) -> None:
        assert self._reply is not None
        first = await self._reply.read(1)
        if first != b"R":
            await self._finish_streams()
            raise ToolError(f"code_exec: the sandbox did not start: {self._startup_error()}")

    def _startup_error(self) -> str:
        err = self._err.text("stderr").strip() if self._err is not None else ""
        code = self._proc.returncode if self._proc is not None else None
        return err.splitlines()[-1] if err else f"exit status {code}"

    async def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until the sandbox has started and is waiting for its request."""
        assert self._ready is not None, "start() first"
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            raise ToolError(f"code_exec: the sandbox did not start within {timeout:g}s", retryable=True) from None

    @property
    def ready(self) -> bool:
        return self._ready is not None and self._ready.done() and self._ready.exception() is None

    async def run(
        self, code: str, inputs: Mapping[str, Any], limits: CodeLimits, files: Mapping[str, str] | None = None
    ) -> SandboxReply:
        """Run `code` once. `files` maps a name to base64 content; they land read-only in ``files/``.

        Raises:
            ToolError: the sandbox timed out, died, broke a limit, or answered something unreadable.
        """
        if self._used:
            raise RuntimeError("a sandbox runs one request only")
        self._used = True
        await self.wait_ready()
        assert self._proc is not None and self._proc.stdin is not None and self._reply is not None
        request = {"code": code, "inputs": dict(inputs), "files": dict(files or {}), "limits": limits.model_dump()}
        payload = json.dumps(request, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")
        try:
            async with asyncio.timeout(limits.timeout_s):
                self._proc.stdin.write(payload)
                with contextlib.suppress(ConnectionError):
                    await self._proc.stdin.drain()
                self._proc.stdin.close()
                data = await self._read_reply(limits.result_kb * 1024 + 2 * limits.output_kb * 1024 + 4096)
        except TimeoutError:
            self.kill()
            raise ToolError(
                f"code_exec: timed out after {limits.timeout_s:g}s (limit timeout_s); the sandbox was killed"
            ) from None
        if data is None:  # it died: let bwrap report how before ending the rest
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 2.0)
            self.kill()
            await self._finish_streams()
            raise ToolError(f"code_exec: the code ended without a result: {self._death()}")
        self.kill()  # the reply is in: end whatever the code left behind
        try:
            reply = SandboxReply.model_validate_json(data)
        except ValidationError:
            raise ToolError(
                "code_exec: the sandbox's reply is not readable (the code wrote on its reply pipe)"
            ) from None
        if reply.ok and len(json.dumps(reply.result, ensure_ascii=False)) > limits.result_kb * 1024:
            raise ToolError(f"code_exec: the result is larger than {limits.result_kb} KiB (limit result_kb)")
        return reply

    async def _read_reply(self, cap: int) -> bytes | None:
        """The framed reply (``<length>\\n<json>``), or None when the process ended without one."""
        assert self._reply is not None
        header = await self._reply.readline()
        if not header.endswith(b"\n"):
            return None
        try:
            size = int(header)
        except ValueError:
            raise ToolError(
                "code_exec: the sandbox's reply is not readable (the code wrote on its reply pipe)"
            ) from None
        if size > cap:
            self.kill()
            raise ToolError(f"code_exec: the result is larger than the limit (result_kb, output_kb): {size} bytes")
        try:
            return await self._reply.readexactly(size)
        except asyncio.IncompleteReadError:
            return None

    def _death(self) -> str:
        assert self._proc is not None and self._err is not None
        code = self._proc.returncode
        sig: int | None = None
        if code is not None and code < 0:
            sig = -code
        elif code is not None and code > 128 and self.config.isolation is Isolation.BWRAP:
            sig = code - 128
        if sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            reason = _SIGNALS.get(sig, f"was killed by {name}")
            what = f"it {reason} ({name})"
        else:
            what = f"it exited with status {code}"
        tail = self._err.text("stderr").strip().splitlines()[-3:]
        return what + (": " + " | ".join(tail) if tail else "")

    async def _finish_streams(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5.0)
        for stream in (self._out, self._err):
            if stream is not None:
                await stream.finish()

    def kill(self, *, sweep: bool = False) -> None:
        """SIGKILL the sandbox's process group (with bwrap, that ends its pid namespace); with `sweep`, also
        every process left with its uid (a detached one that left the group, in the process-level mode)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if sweep and self._lease is not None:
            kill_uid(self._lease.uid)

    async def close(self) -> None:
        """End the sandbox: kill everything it started, wait for it, remove its work folder. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.kill(sweep=True)
        try:
            await self._finish_streams()
            if self._ready is not None:
                if not self._ready.done():
                    self._ready.cancel()
                # Retrieve how the start went (killed before it was ready is expected), so asyncio logs nothing.
                await asyncio.gather(self._ready, return_exceptions=True)
        finally:
            self._cleanup_sync()

    def _cleanup_sync(self) -> None:
        self.kill(sweep=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def world_accessible(path: str) -> bool:
    """Whether any user may run the interpreter at `path` (every parent folder searchable)."""
    real = Path(os.path.realpath(path))
    try:
        if not real.stat().st_mode & 0o001:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in real.parents)
    except OSError:
        return False


@functools.lru_cache(maxsize=16)
def interpreter_prefix(python: str | None) -> tuple[str, str]:
    """The interpreter to run in sandboxes and its install prefix (bound read-only under bwrap); asked once."""
    if python is None:
        base = getattr(sys, "_base_executable", None) or sys.executable
        return os.path.realpath(base), sys.base_prefix
    found = shutil.which(python)
    if found is None:
        raise FileNotFoundError(python)
    probe = subprocess.run(
        [found, "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        timeout=20,
        env={},
        check=True,
    )
    return os.path.realpath(found), probe.stdout.strip()


def describe_argv(argv: Sequence[str]) -> str:
    """A command line for logs, with the bootstrap's source elided."""
    return " ".join("<bootstrap>" if arg == _BOOTSTRAP else arg for arg in argv)
