"""The process-level fallback: used (with one warning) when bubblewrap is missing, refused under strict."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.sandbox.launcher import Isolation
from orchestrator.sandbox.pool import reset_probes, resolve_config

from .conftest import Runner


@pytest.fixture(autouse=True)
def fresh_probes() -> None:
    reset_probes()


def test_without_bwrap_auto_falls_back_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="orchestrator.sandbox"):
        first = asyncio.run(resolve_config(isolation="auto", bwrap="/nonexistent/bwrap"))
        second = asyncio.run(resolve_config(isolation="auto", bwrap="/nonexistent/bwrap"))
    assert first.isolation is Isolation.PROCESS and second.isolation is Isolation.PROCESS
    warnings = [r.getMessage() for r in caplog.records if "REDUCED ISOLATION" in r.getMessage()]
    assert len(warnings) == 1
    assert "/nonexistent/bwrap" in warnings[0] and "CODE_EXEC_ISOLATION=strict" in warnings[0]


def test_strict_refuses_to_run_without_bwrap() -> None:
    with pytest.raises(ConfigurationError, match=r"CODE_EXEC_ISOLATION=strict: full isolation is not available"):
        asyncio.run(resolve_config(isolation="strict", bwrap="/nonexistent/bwrap"))


def test_an_unknown_isolation_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="CODE_EXEC_ISOLATION='paranoid'"):
        asyncio.run(resolve_config(isolation="paranoid"))


def test_fallback_runs_with_an_empty_environment(fallback: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    reply = fallback("import os\nresult = dict(os.environ)")
    assert reply.ok
    assert "OPENAI_API_KEY" not in reply.result
    assert set(reply.result) <= {"HOME", "TMPDIR", "LC_ALL", "PATH"}


def test_fallback_drops_root_and_cannot_read_the_parents_environ(
    fallback: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fallback.config.drop_uid:
        pytest.skip("the orchestrator is not root here")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    reply = fallback(
        f"import os\nresult = {{'uid': os.getuid()}}\nresult['environ'] = open('/proc/{os.getpid()}/environ').read()"
    )
    assert not reply.ok and reply.error is not None and reply.error.type == "PermissionError"
    uid = fallback("import os\nresult = os.getuid()")
    assert uid.ok and fallback.config.uid_base <= uid.result < fallback.config.uid_base + fallback.config.uid_span


def test_fallback_contains_a_fork_bomb(fallback: Runner) -> None:
    if not fallback.config.drop_uid:
        pytest.skip("RLIMIT_NPROC needs a dedicated uid (the orchestrator is not root here)")
    reply = fallback(
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n"
        "            os._exit(0)\n        n += 1\n"
        "except OSError as exc:\n    result = {'forked': n, 'errno': exc.errno}",
        max_procs=6,
    )
    assert reply.ok and reply.result["forked"] < 6 and reply.result["errno"] == 11


def test_fallback_kills_a_detached_daemon_and_removes_the_work_folder(fallback: Runner) -> None:
    if not fallback.config.drop_uid:
        pytest.skip("finding a detached process needs a dedicated uid")
    reply = fallback(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
        "    os._exit(0)\ntime.sleep(0.1)\nresult = os.getcwd()"
    )
    assert reply.ok
    assert not Path(reply.result).exists()  # the runner also checked that no process of the uid is left


def test_fallback_timeout_and_memory_limits_hold(fallback: Runner) -> None:
    with pytest.raises(ToolError, match="timed out"):
        fallback("while True:\n    pass", timeout_s=1)
    reply = fallback("x = bytearray(1024 * 1024 * 1024)", memory_mb=128)
    assert not reply.ok and reply.error is not None and reply.error.type == "MemoryError"


def test_the_fallback_process_is_not_the_orchestrators(fallback: Runner) -> None:
    reply = fallback("import os\nresult = [os.getpid(), os.getsid(0), os.getpgid(0)]")
    assert reply.ok
    pid, sid, pgid = reply.result
    assert pid != os.getpid() and sid == pid and pgid == pid  # its own session and process group
