"""Hostile code under full isolation (bubblewrap): every attack is contained, the orchestrator stays alive,
nothing is left running (checked in /proc after every call), nothing is written outside the work folder.

Each test runs the attack, asserts what it got (an error or a harmless result), then runs a control
snippet (`assert_alive`); the `sandboxed` fixture checks for leftover processes after every call.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, Runner

SECRET = "orchestrator-test-secret-" + uuid.uuid4().hex


def everything(reply: object) -> str:
    return json.dumps(reply.model_dump() if hasattr(reply, "model_dump") else reply)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ORCHESTRATOR_TEST_TOKEN", SECRET)
    return SECRET


def test_environment_secrets_are_not_visible(sandboxed: Runner, secret_env: str) -> None:
    reply = sandboxed(
        """
import os
found = dict(os.environ)
for pid in os.listdir('/proc'):
    if pid.isdigit() or pid == 'self':
        for name in ('environ', 'cmdline'):
            try:
                found[pid + '/' + name] = open(f'/proc/{pid}/{name}', 'rb').read().decode('latin-1')
            except OSError as exc:
                found[pid + '/' + name] = repr(exc)
result = found
"""
    )
    assert reply.ok, reply.error
    assert secret_env not in everything(reply)
    assert "OPENAI_API_KEY" not in reply.result
    assert {k for k in reply.result if "/" not in k} <= {"HOME", "TMPDIR", "LC_ALL", "PATH", "PWD"}
    # pid 1 is bwrap's init, started from an empty environment and not readable anyway
    assert "Permission denied" in reply.result["1/environ"] or reply.result["1/environ"] == ""
    sandboxed.assert_alive()


def test_parent_environ_is_out_of_reach(sandboxed: Runner, secret_env: str) -> None:
    parent = os.getpid()
    reply = sandboxed(
        f"""
import os
out = {{}}
for path in ('/proc/{parent}/environ', f'/proc/{{os.getppid()}}/environ', '/proc/1/environ'):
    try:
        out[path] = open(path, 'rb').read().decode('latin-1')
    except OSError as exc:
        out[path] = type(exc).__name__
result = out
"""
    )
    assert reply.ok, reply.error
    assert secret_env not in everything(reply)
    sandboxed.assert_alive()


@pytest.mark.parametrize(
    "path",
    ["/etc/shadow", "/etc/passwd", "/root/.ssh/id_rsa", str(Path.home() / ".ssh"), str(REPO / "pyproject.toml")],
)
def test_system_home_and_project_files_cannot_be_read(sandboxed: Runner, path: str) -> None:
    reply = sandboxed(f"result = open({path!r}).read()")
    assert not reply.ok
    assert reply.error is not None and reply.error.type in ("FileNotFoundError", "PermissionError", "IsADirectoryError")
    sandboxed.assert_alive()


def test_only_usr_and_the_python_install_are_visible(sandboxed: Runner) -> None:
    reply = sandboxed("import os\nresult = sorted(os.listdir('/'))")
    assert reply.ok
    assert "etc" not in reply.result and "home" not in reply.result and "tmp" not in reply.result
    assert set(reply.result) <= {"bin", "dev", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "usr", "work", "root"}


@pytest.fixture
def marker() -> Iterator[str]:
    name = "sandbox-escape-" + uuid.uuid4().hex
    yield name
    for place in (Path("/tmp"), REPO, Path.home(), Path("/usr"), Path("/")):
        leaked = place / name
        assert not leaked.exists(), f"the sandbox wrote {leaked}"


def test_writing_outside_the_work_folder_fails(sandboxed: Runner, marker: str) -> None:
    targets = [f"/tmp/{marker}", f"{REPO}/{marker}", f"/usr/{marker}", f"/{marker}", f"/root/{marker}"]
    reply = sandboxed(
        f"""
out = {{}}
for path in {targets!r}:
    try:
        open(path, 'w').write('x')
        out[path] = 'written'
    except OSError as exc:
        out[path] = type(exc).__name__
open({marker!r}, 'w').write('inside the work folder is fine')
result = out
"""
    )
    assert reply.ok, reply.error
    assert "written" not in reply.result.values()
    sandboxed.assert_alive()


def test_symlink_tricks_do_not_reach_the_host(sandboxed: Runner, marker: str) -> None:
    reply = sandboxed(
        f"""
import os
out = {{}}
os.symlink('/tmp/{marker}', 'to_tmp')
os.symlink('{REPO}/pyproject.toml', 'to_project')
os.symlink('/proc/1/root/etc/shadow', 'to_init_root')
os.symlink('/proc/{os.getpid()}/root/etc/shadow', 'to_parent_root')
for name, mode in (('to_tmp', 'w'), ('to_project', 'r'), ('to_init_root', 'r'), ('to_parent_root', 'r')):
    try:
        with open(name, mode) as f:
            out[name] = f.write('x') if mode == 'w' else f.read()[:20]
    except OSError as exc:
        out[name] = type(exc).__name__
result = out
"""
    )
    assert reply.ok, reply.error
    assert set(reply.result.values()) <= {"FileNotFoundError", "PermissionError"}, reply.result
    sandboxed.assert_alive()


class Listener:
    """TCP and UDP listeners on 127.0.0.1 and an abstract unix socket, recording anything that arrives."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen()
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.unix_name = "\0orchestrator-test-" + uuid.uuid4().hex
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.unix_name)
        self.unix.listen()
        self.unix.settimeout(0.2)
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for sock, kind in ((self.tcp, "tcp"), (self.unix, "unix")):
                try:
                    conn, _ = sock.accept()
                    self.received.append(kind)
                    conn.close()
                except OSError:
                    pass
            try:
                self.udp.recvfrom(100)
                self.received.append("udp")
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in (self.tcp, self.udp, self.unix):
            sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def test_network_listeners_on_the_host_are_unreachable(sandboxed: Runner, listener: Listener) -> None:
    tcp_port, udp_port = listener.tcp.getsockname()[1], listener.udp.getsockname()[1]
    reply = sandboxed(
        f"""
import socket
out = {{}}
try:
    socket.create_connection(('127.0.0.1', {tcp_port}), timeout=1)
    out['tcp'] = 'connected'
except OSError as exc:
    out['tcp'] = type(exc).__name__
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(5):
        s.sendto(b'hello', ('127.0.0.1', {udp_port}))
    out['udp'] = 'sent'
except OSError as exc:
    out['udp'] = type(exc).__name__
try:
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect({listener.unix_name!r})
    out['unix'] = 'connected'
except OSError as exc:
    out['unix'] = type(exc).__name__
try:
    socket.create_connection(('1.1.1.1', 53), timeout=1)
    out['internet'] = 'connected'
except OSError as exc:
    out['internet'] = type(exc).__name__
result = out
"""
    )
    assert reply.ok, reply.error
    assert reply.result["tcp"] != "connected" and reply.result["unix"] != "connected"
    assert reply.result["internet"] != "connected"
    sandboxed.assert_alive()  # gives the listener time to see a late datagram
    assert listener.received == []


def test_subprocess_os_system_and_ctypes_stay_inside(sandboxed: Runner, marker: str) -> None:
    reply = sandboxed(
        f"""
import ctypes, os, subprocess
out = {{}}
out['id'] = subprocess.run(['id'], capture_output=True, text=True).stdout.strip()
out['cat_shadow'] = subprocess.run(['cat', '/etc/shadow'], capture_output=True, text=True).returncode
out['system'] = os.system('echo x > /tmp/{marker}')
libc = ctypes.CDLL(None, use_errno=True)
out['setuid0'] = libc.setuid(0)
out['unshare_net'] = libc.unshare(0x40000000)
out['mount'] = libc.mount(b'none', b'/usr', b'tmpfs', 0, None)
result = out
"""
    )
    assert reply.ok, reply.error
    assert "uid=0" not in reply.result["id"] and reply.result["cat_shadow"] != 0
    assert reply.result["system"] != 0
    assert reply.result["setuid0"] == -1 and reply.result["mount"] == -1
    sandboxed.assert_alive()


def test_a_fork_bomb_is_capped_by_the_process_limit(sandboxed: Runner) -> None:
    reply = sandboxed(
        """
import os, time
forked = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        forked += 1
except OSError as exc:
    result = {'forked': forked, 'error': exc.errno}
""",
        max_procs=8,
        timeout_s=20,
    )
    assert reply.ok, reply.error
    assert reply.result["forked"] < 8 and reply.result["error"] == 11  # EAGAIN
    sandboxed.assert_alive()


def test_a_memory_bomb_fails_with_memory_error(sandboxed: Runner) -> None:
    reply = sandboxed("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))", memory_mb=128)
    assert not reply.ok and reply.error is not None and reply.error.type == "MemoryError"
    sandboxed.assert_alive()


def test_an_infinite_loop_is_killed_at_the_wall_clock_timeout(sandboxed: Runner) -> None:
    from orchestrator.errors import ToolError

    with pytest.raises(ToolError, match=r"timed out after 1s \(limit timeout_s\)"):
        sandboxed("import time\nwhile True:\n    time.sleep(0.01)", timeout_s=1)
    sandboxed.assert_alive()


def test_a_cpu_burner_is_stopped_by_the_cpu_limit(sandboxed: Runner) -> None:
    from orchestrator.errors import ToolError

    with pytest.raises(ToolError, match="CPU time"):
        sandboxed("while True:\n    pass", cpu_s=1, timeout_s=30)
    sandboxed.assert_alive()


def test_filling_the_disk_stops_at_the_work_folder_size(sandboxed: Runner) -> None:
    reply = sandboxed(
        """
import os
written = 0
try:
    for i in range(10_000):
        with open(f'fill{i}', 'wb') as f:
            for _ in range(4):
                f.write(b'x' * 1024 * 1024)
                written += 1
except OSError as exc:
    result = {'mib': written, 'error': exc.strerror}
""",
        disk_mb=8,
    )
    assert reply.ok, reply.error
    assert reply.result["mib"] <= 8 and reply.result["error"] in ("No space left on device", "File too large")
    sandboxed.assert_alive()


def test_huge_output_is_cut_at_the_cap(sandboxed: Runner) -> None:
    reply = sandboxed("import sys\nprint('x' * 3_000_000)\nsys.stderr.write('e' * 100_000)\nresult = 1", output_kb=4)
    assert reply.ok and reply.result == 1
    assert len(reply.stdout) < 4096 + 200 and "more bytes of stdout cut" in reply.stdout
    assert len(reply.stderr) < 4096 + 200 and "more bytes of stderr cut" in reply.stderr
    sandboxed.assert_alive()


def test_endless_output_fails_cleanly(sandboxed: Runner) -> None:
    reply = sandboxed("while True:\n    print('y' * 10000)", disk_mb=4, output_kb=2)
    assert not reply.ok and reply.error is not None and reply.error.type == "OSError"
    assert len(reply.stdout) < 2048 + 200
    sandboxed.assert_alive()


def test_signalling_or_tracing_the_parent_is_refused(sandboxed: Runner) -> None:
    me = os.getpid()
    reply = sandboxed(
        f"""
import ctypes, os, signal
out = {{}}
for pid in (os.getppid(), 1, {me}):
    try:
        os.kill(pid, signal.SIGKILL)
        out[f'kill {{pid}}'] = 'sent'
    except OSError as exc:
        out[f'kill {{pid}}'] = type(exc).__name__
libc = ctypes.CDLL(None, use_errno=True)
out['ptrace'] = libc.ptrace(16, os.getppid(), 0, 0)  # PTRACE_ATTACH
out['ptrace_errno'] = ctypes.get_errno()
result = out
"""
    )
    assert reply.ok, reply.error
    assert "sent" not in reply.result.values(), reply.result
    assert reply.result["ptrace"] == -1
    sandboxed.assert_alive()


def test_introspection_escapes_find_nothing_beyond_the_sandbox(sandboxed: Runner, secret_env: str) -> None:
    reply = sandboxed(
        """
import gc, sys
out = {}
classes = ().__class__.__base__.__subclasses__()
wrap = next(c for c in classes if c.__name__ == '_wrap_close')
system = wrap.__init__.__globals__['system']
out['system_via_subclasses'] = system('cat /etc/shadow 2>/dev/null')
frame = sys._getframe()
names = []
while frame is not None:
    names.extend(frame.f_globals)
    frame = frame.f_back
out['frames'] = len(names)
strings = [o for o in gc.get_objects() if isinstance(o, str)]
out['strings'] = '\\n'.join(s for s in strings if 'KEY' in s or 'TOKEN' in s)
result = out
"""
    )
    assert reply.ok, reply.error
    assert reply.result["system_via_subclasses"] != 0
    assert secret_env not in everything(reply)
    sandboxed.assert_alive()


def test_forging_the_reply_only_breaks_the_codes_own_result(sandboxed: Runner) -> None:
    from orchestrator.errors import ToolError

    with pytest.raises(ToolError, match="reply"):
        sandboxed("import os, sys\nos.write(int(sys.orig_argv[-1]), b'garbage\\n')\nresult = 1")
    sandboxed.assert_alive()


def test_a_daemon_left_behind_is_killed(sandboxed: Runner) -> None:
    reply = sandboxed(
        """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.2)
result = 'parent done'
"""
    )
    assert reply.ok and reply.result == "parent done"
    sandboxed.assert_alive()  # the fixture and the runner check that no process of the sandbox is left
