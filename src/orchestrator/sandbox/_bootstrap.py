"""The program every sandbox starts with (standard library only; run as ``python -I -S -c <this file>``).

It is started ahead of time (a pool keeps a few waiting), imports the common modules, writes one ``R``
byte on the reply pipe (file descriptor ``argv[1]``) to say it is ready, then blocks reading one
request from stdin: ``{"code", "inputs", "files", "limits"}``. It writes the files into ``files/``,
lowers its own resource limits (an unprivileged process may always lower them, never raise them again),
runs the code once and writes one JSON reply on the reply pipe: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"type", "message", "line"?, "column"?, "traceback"?}}``, with ``stdout`` and
``stderr`` (the code's file descriptors 1 and 2 go to files in the work folder, read back up to the cap),
framed as ``<length>\n<json>`` so the parent needs no end-of-file. Then it exits with
``os._exit`` so nothing the code registered (atexit, non-daemon threads) runs after the reply.

The code runs with the same rights as this program, so nothing here is a security boundary: the
boundary is the operating system's (namespaces, an unprivileged uid, resource limits), set up by the
launcher. This program only makes results and errors readable. The parent reads the reply with a size
cap and validates it; a reply forged by the code only changes the code's own result.
"""

import base64
import builtins
import json
import linecache
import os
import resource
import signal
import sys
import traceback
from typing import Any, NoReturn

PRELOAD = (
    "collections",
    "csv",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "io",
    "itertools",
    "math",
    "operator",
    "re",
    "statistics",
    "string",
)
FILENAME = "<code>"
OUT, ERR = ".stdout", ".stderr"
MIB = 1024 * 1024
MAX_TRACEBACK_CHARS = 4000

_write = os.write
_dumps = json.dumps
_exit = os._exit


def _captured(name: str, cap: int) -> str:
    try:
        size = os.path.getsize(name)
        with open(name, "rb") as stream:
            data = stream.read(cap)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > cap:
        text += f"\n[... {size - cap} more bytes of {name[1:]} cut: limit output_kb={cap // 1024}]"
    return text


def _reply(fd: int, message: dict[str, Any], output_cap: int = 65536) -> NoReturn:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # the code may have closed or replaced them
        pass
    message["stdout"] = _captured(OUT, output_cap)
    message["stderr"] = _captured(ERR, output_cap)
    try:
        data = _dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError, MemoryError) as exc:
        message = _error("ResultError", f"the result is not JSON: {exc}")
        data = _dumps(message).encode()
    view = memoryview(b"%d\n" % len(data) + data)
    while view:
        written = _write(fd, view)
        view = view[written:]
    _exit(0)


def _error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"ok": False, "error": error}


def _limit(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def apply_limits(limits: dict[str, float]) -> None:
    """Lower this process's limits to the request's (soft = hard, so the code cannot raise them again)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime)
    _limit(resource.RLIMIT_CORE, 0)
    # SIGXCPU at the soft limit, SIGKILL one second later if the code catches it.
    cpu = used + int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    _limit(resource.RLIMIT_FSIZE, int(limits["disk_mb"]) * MIB)
    _limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    _limit(resource.RLIMIT_NPROC, int(limits["max_procs"]))
    _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * MIB)


def write_files(files: dict[str, str] | None) -> None:
    if not files:
        return
    os.mkdir("files", 0o755)
    for name, encoded in files.items():
        path = os.path.join("files", name)
        with open(path, "wb") as out:
            out.write(base64.b64decode(encoded))
        os.chmod(path, 0o444)


def _own_frames(te: traceback.TracebackException | None) -> None:
    """Keep only the code's own frames in a traceback (and in the exceptions it chains)."""
    seen: set[int] = set()
    while te is not None and id(te) not in seen:
        seen.add(id(te))
        te.stack = traceback.StackSummary.from_list([f for f in te.stack if f.filename == FILENAME])
        _own_frames(te.__cause__)
        te = te.__context__


def describe(exc: BaseException) -> dict[str, Any]:
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, limit=None, compact=True)
    _own_frames(te)
    text = "".join(te.format())
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return _error(type(exc).__name__, message, line=line, traceback=text)


def run(request: dict[str, Any]) -> dict[str, Any]:
    source = request["code"]
    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    try:
        compiled = compile(source, FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        column = getattr(exc, "offset", None)
        text = (getattr(exc, "text", None) or "").rstrip()
        message = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or exc}"
        return _error(type(exc).__name__, message, line=line, column=column, traceback=text or None)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    namespace.update(request.get("inputs") or {})
    try:
        try:
            exec(compiled, namespace)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                return _error("SystemExit", f"the code called exit({exc.code!r})")
        main = namespace.get("main")
        value = main() if callable(main) else namespace.get("result")
    except BaseException as exc:
        return describe(exc)
    return {"ok": True, "result": value}


def redirect_output() -> None:
    """Send fds 1 and 2 (the code's, and any child's) to files in the work folder, read back when done."""
    for fd, name in ((1, OUT), (2, ERR)):
        target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    # A write past the file size limit raises OSError (EFBIG) in the code instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def main() -> None:
    reply_fd = int(sys.argv[1])
    os.set_inheritable(reply_fd, False)
    for name in PRELOAD:
        __import__(name)
    _write(reply_fd, b"R")
    raw = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    request = json.loads(raw)
    try:
        write_files(request.get("files"))
    except OSError as exc:
        _reply(reply_fd, _error("FilesError", f"the files passed in do not fit in the work folder: {exc}"))
    output_cap = int(request["limits"]["output_kb"]) * 1024
    redirect_output()
    apply_limits(request["limits"])
    sys.argv = [FILENAME]
    try:
        message = run(request)
    except MemoryError:
        message = _error("MemoryError", "out of memory (limit memory_mb)")
    _reply(reply_fd, message, output_cap)


if __name__ == "__main__":
    main()
