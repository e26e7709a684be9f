"""The run store on its own: schema and migrations, whole-or-nothing writes, reuse, refusal of unusable files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import StoreError, StoreUnusableError
from orchestrator.store import SCHEMA_VERSION, EventRecord, RunStore, StepRecord, plan_id_of

PLAN = {"goal": "g", "steps": [{"id": "a", "tool": "t", "args": {}}], "output": "step:a"}


def step(run_id: str, step_id: str, status: str = "succeeded", output: object = None, **kw: object) -> StepRecord:
    return StepRecord(run_id=run_id, doc="", step_id=step_id, tool="t", tool_version="1", kind="function",
                      status=status, output=output, attempts=1, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_a_new_store_is_migrated_to_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    with RunStore.open(tmp_path) as store:
        assert store.path == tmp_path / "runs.sqlite"
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[1] for r in db.execute("SELECT * FROM schema_migrations")] == ["0001_initial"]
    db.close()
    with RunStore.open(tmp_path):  # opening again applies nothing twice
        pass
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_steps_are_recorded_with_their_events_and_reused_by_document(tmp_path: Path) -> None:
    with RunStore.open(tmp_path) as store:
        pid = store.save_plan(PLAN)
        assert pid == plan_id_of(PLAN) and store.load_plan(pid) == PLAN
        store.create_run("r1", kind="batch", request="req", plan_id=pid, documents=["d1", "d2"])
        events = [EventRecord("", 1.0, "step_started", "a", {"tool": "t"})]
        store.record_step(step("r1", "a", output={"x": [1, 2]}), events)
        store.record_step(step("r1", "b", status="failed", output="ignored", error="boom"))
        assert store.finished_steps("r1") == {"a": {"x": [1, 2]}}
        assert [e.type for e in store.events("r1")] == ["step_started"]
        rows = {s.step_id: s for s in store.steps("r1")}
        assert rows["b"].error == "boom" and rows["b"].output is None
        assert [d.doc for d in store.documents("r1")] == ["d1", "d2"]
        assert store.find_run("r1") is not None and store.get_run("nope") is None


def test_a_step_whose_write_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    with RunStore.open(tmp_path) as store:
        store.create_run("r1", kind="run", request="req")
        bad = [EventRecord("", 1.0, "step_started", "a", {}), EventRecord("", 2.0, None, "a", {})]  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            store.record_step(step("r1", "a", output=1), bad)  # the second event breaks NOT NULL: all rolled back
        assert store.steps("r1") == [] and store.events("r1") == []
        store.record_step(step("r1", "a", output=1))  # the connection is usable afterwards
        assert store.finished_steps("r1") == {"a": 1}


def test_deterministic_results_are_cached_by_tool_version_and_arguments(tmp_path: Path) -> None:
    with RunStore.open(tmp_path) as store:
        store.create_run("r1", kind="run", request="req")
        store.record_step(step("r1", "a", output=[1], inputs_hash="h1"), cache=True)
        assert store.cached_output("t", "1", "h1") == ([1],)
        assert store.cached_output("t", "2", "h1") is None  # another version of the tool
        assert store.cached_output("t", "1", "h2") is None


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreUnusableError, match=r"schema is version 2, newer than this orchestrator knows \(1\)"):
        RunStore.open(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not sqlite at all\n" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreUnusableError, match="is not a SQLite database"):
        RunStore.open(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "runs.sqlite-wal").exists()


def test_a_damaged_database_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with RunStore.open(path) as store:
        store.create_run("r1", kind="run", request="req")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the header survives, the first page (the schema) does not
    path.write_bytes(bytes(data))
    for name in ("runs.sqlite-wal", "runs.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    before = path.read_bytes()
    with pytest.raises(StoreUnusableError, match="is damaged"):
        with RunStore.open(path) as store:
            store.list_runs()
    assert path.read_bytes() == before


HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()  # hold the write lock until told
    db.execute("COMMIT")
    """
)


def _locker(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_store_locked_by_another_process_fails_with_a_clear_error_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    proc = _locker(path)
    try:
        with RunStore.open(path, busy_timeout_s=0.3) as store:
            with pytest.raises(StoreError, match=r"is locked by another process \(waited 0.3s\)"):
                store.create_run("r1", kind="run", request="req")
            assert store.get_run("r1") is None
    finally:
        proc.communicate("\n", timeout=30)
    with RunStore.open(path) as store:  # once the other process lets go, writing works
        store.create_run("r1", kind="run", request="req")


def test_a_writer_waits_for_another_process_lock_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    proc = _locker(path)
    import threading

    release = threading.Timer(0.5, lambda: proc.communicate("\n", timeout=30))
    release.start()
    try:
        with RunStore.open(path, busy_timeout_s=60) as store:
            store.create_run("r1", kind="run", request="req")  # blocks until the lock is released, then writes
            assert store.get_run("r1") is not None
    finally:
        release.join()
    assert proc.returncode == 0


def test_store_settings_are_read_and_checked_in_one_place() -> None:
    from orchestrator.errors import ConfigurationError
    from orchestrator.settings import Settings

    s = Settings.from_env({"ORCHESTRATOR_HOME": "~/somewhere", "STORE_TOOL_CACHE": "no"}, dotenv=None)
    assert s.store_path == Path.home() / "somewhere" / "runs.sqlite" and s.store_tool_cache is False
    assert Settings.from_env({"ORCHESTRATOR_STORE": "/x/r.db"}, dotenv=None).store_path == Path("/x/r.db")
    with pytest.raises(ConfigurationError, match="STORE_SYNC"):
        Settings.from_env({"STORE_SYNC": "fast"}, dotenv=None)
    with pytest.raises(ConfigurationError, match="STORE_BUSY_TIMEOUT_S"):
        Settings.from_env({"STORE_BUSY_TIMEOUT_S": "-1"}, dotenv=None)


def test_outputs_and_errors_that_are_not_valid_utf8_are_kept(tmp_path: Path) -> None:
    with RunStore.open(tmp_path) as store:
        store.create_run("r1", kind="run", request="odd \ud800 request")
        store.record_step(step("r1", "a", output={"text": "lone \ud800 surrogate"}))
        store.record_step(step("r1", "b", status="failed", error="bad \udcff byte"))
        store.finish_run("r1", "partial", "why \ud800")
        assert store.finished_steps("r1") == {"a": {"text": "lone \ud800 surrogate"}}  # read back exactly
        assert {s.step_id: s.error for s in store.steps("r1")}["b"] == "bad \\udcff byte"
