"""Sandboxes for the tests: full isolation (bubblewrap) and the process-level fallback, and leak checks."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.sandbox.launcher import SandboxConfig, SandboxReply, world_accessible
from orchestrator.sandbox.limits import CodeLimits
from orchestrator.sandbox.pool import resolve_config, run_code

REPO = Path(__file__).resolve().parents[2]


def sandbox_uid_processes(config: SandboxConfig) -> list[int]:
    """Live processes running under any uid of the sandbox range (should be none between calls)."""
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        state = next((line for line in status.splitlines() if line.startswith("State:")), "")
        uids = [int(u) for u in uid_line.split()[1:3]]
        if state.split()[1:2] != ["Z"] and any(config.uid_base <= u < config.uid_base + config.uid_span for u in uids):
            found.append(int(entry.name))
    return found


def children_of_this_process() -> list[int]:
    """Live (not zombie) direct children of the test process: bwrap or python left behind."""
    me = str(os.getpid())
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == me and not fields.get("State", "").startswith("Z"):
            found.append(int(entry.name))
    return found


class Runner:
    """Runs snippets in one sandbox configuration and checks that nothing outlives a call."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        # Children the test process already had (a session-wide local Ray instance, say) are not the sandbox's.
        self.before = set(children_of_this_process())

    def __call__(
        self, code: str, inputs: Mapping[str, Any] | None = None, files: Mapping[str, str] | None = None, **limits: Any
    ) -> SandboxReply:
        call = run_code(code, inputs, limits=CodeLimits(**limits), files=files, config=self.config)
        try:
            return asyncio.run(call)
        finally:
            self.assert_clean()

    def assert_clean(self) -> None:
        if self.config.drop_uid:
            assert sandbox_uid_processes(self.config) == [], "a sandboxed process outlived its call"
        assert set(children_of_this_process()) - self.before == set(), "a sandbox process was left running"

    def assert_alive(self) -> None:
        """The orchestrator (this process) still runs sandboxes normally."""
        reply = self("result = sum(range(10))")
        assert reply.ok and reply.result == 45


@pytest.fixture(scope="session")
def bwrap_config() -> SandboxConfig:
    try:
        return asyncio.run(resolve_config(isolation="strict"))
    except ConfigurationError as exc:
        pytest.skip(f"full isolation not available here: {exc}")


@pytest.fixture
def sandboxed(bwrap_config: SandboxConfig) -> Iterator[Runner]:
    runner = Runner(bwrap_config)
    yield runner
    runner.assert_clean()


def shared_interpreter() -> str | None:
    """An interpreter every user can run (so the fallback can drop root), if there is one."""
    for candidate in (os.path.realpath(getattr(__import__("sys"), "_base_executable", "")), "/usr/bin/python3"):
        if candidate and os.path.exists(candidate) and world_accessible(candidate):
            return candidate
    return shutil.which("python3") if world_accessible(shutil.which("python3") or "/nonexistent") else None


@pytest.fixture(scope="session")
def process_config() -> SandboxConfig:
    python = shared_interpreter()
    if python is None:
        pytest.skip("no interpreter readable by other users for the process-level sandbox")
    return asyncio.run(resolve_config(isolation="process", python=python))


@pytest.fixture
def fallback(process_config: SandboxConfig) -> Iterator[Runner]:
    runner = Runner(process_config)
    yield runner
    runner.assert_clean()
