"""Sandboxes never outlive the orchestrator: killed with it (parent-death signal), or reaped by the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.sandbox.launcher import SandboxConfig, reap_orphans

from .conftest import REPO

HOLDER = """
import asyncio, json, subprocess, sys, time
from orchestrator.sandbox.pool import SandboxPool, resolve_config

async def main():
    pool = SandboxPool(await resolve_config(isolation=sys.argv[1]), size=3)
    await pool.warm()
    # A bystander keeps the sandboxes' stdin open, so that they do not simply see it close when we die.
    fds = [s._proc.stdin.get_extra_info("pipe").fileno() for s in pool._waiting]
    keeper = subprocess.Popen(["sleep", "120"], pass_fds=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(json.dumps({"sandboxes": [s.pid for s in pool._waiting], "keeper": keeper.pid}), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("isolation", ["strict", "process"])
def test_pre_started_sandboxes_die_with_an_orchestrator_killed_by_sigkill(
    request: pytest.FixtureRequest, isolation: str
) -> None:
    if isolation == "strict":
        request.getfixturevalue("bwrap_config")  # skips without bwrap
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, isolation], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        started = json.loads(holder.stdout.readline())
        pids, keeper = started["sandboxes"], started["keeper"]
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    try:
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids), "a sandbox outlived its orchestrator"
    finally:
        os.kill(keeper, signal.SIGKILL)


def test_the_reaper_ends_what_a_dead_orchestrator_left_under_a_sandbox_uid(
    bwrap_config: SandboxConfig, tmp_path: Path
) -> None:
    config = replace(bwrap_config, lock_dir=str(tmp_path / "locks"))
    (tmp_path / "locks").mkdir(mode=0o700)
    uid = config.uid_base + 7
    (tmp_path / "locks" / str(uid)).touch()  # leased once, by an orchestrator that is gone (nobody holds the lock)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", f"--reuid={uid}"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--reuid=12345"])
    try:
        assert reap_orphans(config) == 1
        orphan.wait(timeout=20)
        assert orphan.returncode == -signal.SIGKILL
        assert bystander.poll() is None  # not a sandbox uid: left alone
    finally:
        for proc in (orphan, bystander):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert os.path.exists(tmp_path / "locks" / str(uid))
