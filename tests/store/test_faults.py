"""Faults, with exact counts: SIGKILL mid-batch, provider storms, a locked store, a full disk, unusable files."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.bench.planner import RECEIPT_PLAN
from orchestrator.testing.fake_llm import Failure, FakeLLMServer, RecordedRequest, Reply
from orchestrator.testing.fake_small_model import SmallModelResponder, task_input

from ._cli import PLAN, REPO, clean_env, cli, cli_json, receipts

ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]


def start_batch(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*ORCHESTRATOR, "batch", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def query(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db_path.exists():
        return []
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 240
    while not condition():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the batch ended (code {proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def documents_done(db: Path) -> int:
    rows = query(db, "SELECT COUNT(*) FROM documents WHERE status != 'pending'")
    return int(rows[0][0]) if rows else 0


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if proc.stderr is not None:
        proc.stderr.close()


def the_run_id(db: Path) -> str:
    [(rid,)] = query(db, "SELECT id FROM runs")
    return str(rid)


def finished_per_step(db: Path, rid: str) -> Counter[tuple[str, str]]:
    rows = query(db, f"SELECT doc, step_id FROM events WHERE run_id = '{rid}' AND type = 'step_finished'")
    return Counter((doc, step) for doc, step in rows)


def read_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


# --- SIGKILL ---------------------------------------------------------------------------------------------------


def test_a_1000_document_batch_killed_a_third_of_the_way_resumes_to_exactly_1000_results(tmp_path: Path) -> None:
    docs = receipts(tmp_path / "docs", 1000)
    out = tmp_path / "out.jsonl"
    env = clean_env()
    db = Path(env["ORCHESTRATOR_HOME"]) / "runs.sqlite"
    proc = start_batch([str(PLAN), str(docs), "--input", "image_path", "--out", str(out), "--concurrency", "16"], env)
    wait_for(lambda: documents_done(db) >= 334, "a third of the documents", proc)
    kill(proc)
    rid = the_run_id(db)
    done_before = documents_done(db)
    assert 334 <= done_before < 1000
    finished_before = finished_per_step(db, rid)

    resumed = cli("resume", rid, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    lines = read_lines(out)
    assert len(lines) == 1000
    assert sorted(line["document"] for line in lines) == sorted(str(p) for p in docs.iterdir())
    assert all(line["status"] == "succeeded" for line in lines)
    finished = finished_per_step(db, rid)
    assert len(finished) == 5000 and set(finished.values()) == {1}  # no step finished twice
    assert all(finished[key] == 1 for key in finished_before)
    [(sessions, status)] = query(db, f"SELECT sessions, status FROM runs WHERE id = '{rid}'")
    assert (sessions, status) == (2, "succeeded")


class PaidModel:
    """A small model that answers like one (SmallModelResponder) and counts the calls it answered (paid), by
    their content. While `hold` is set, new calls wait and are then refused: they are never answered or paid."""

    def __init__(self) -> None:
        self.responder = SmallModelResponder()
        self.hold = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.paid: Counter[str] = Counter()
        self.active = 0
        self.held = 0

    def __call__(self, request: RecordedRequest) -> Reply | Failure:
        with self.lock:
            self.active += 1
        try:
            if self.hold.is_set():
                with self.lock:
                    self.held += 1
                self.release.wait(120)
                return Failure(503)
            time.sleep(0.03)
            data = self.responder.answer(request)
            with self.lock:
                self.paid[json.dumps([request.json_schema, task_input(request)], sort_keys=True)] += 1
            return Reply(data=data)
        finally:
            with self.lock:
                self.active -= 1

    def quiet(self) -> bool:
        with self.lock:
            return self.active == self.held


def model_env(server: FakeLLMServer, home: Path) -> dict[str, str]:
    return clean_env(
        ORCHESTRATOR_HOME=str(home), USE_SMALL_MODEL="true", SMALL_MODEL_BACKEND="ollama",
        OLLAMA_API_URL=server.base_url, WORKER_MODEL="phi3", SMALL_MODEL_CASCADE="keyword,llm",
        SMALL_MODEL_CACHE="false", SMALL_MODEL_GATHER_MS="0", SMALL_MODEL_TIMEOUT_S="120",
    )  # fmt: skip


@pytest.fixture
def model_server() -> Iterator[tuple[FakeLLMServer, PaidModel]]:
    paid = PaidModel()
    with FakeLLMServer(default=paid) as server:
        yield server, paid
        paid.release.set()


def stable(db: Path) -> Callable[[], bool]:
    """True once the store has not changed over the last few polls (the batch waits on held calls)."""
    seen: list[Any] = []

    def check() -> bool:
        seen.append(query(db, "SELECT (SELECT COUNT(*) FROM steps), (SELECT COUNT(*) FROM events)"))
        time.sleep(0.2)
        return len(seen) >= 5 and seen[-1] == seen[-2] == seen[-3] == seen[-4] == seen[-5]

    return check


def test_sigkill_mid_batch_then_resume_pays_no_model_call_twice(tmp_path: Path, model_server: Any) -> None:
    server, paid = model_server
    docs = receipts(tmp_path / "docs", 40)
    clean_out = tmp_path / "clean.jsonl"
    clean = subprocess.run([*ORCHESTRATOR, "batch", str(PLAN), str(docs), "--input", "image_path", "--out",
                            str(clean_out)], env=model_env(server, tmp_path / "clean-home"), cwd=REPO,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    clean_paid = Counter(paid.paid)
    assert sum(clean_paid.values()) >= 40  # at least one parse call per receipt
    paid.paid.clear()

    home = tmp_path / "home"
    env = model_env(server, home)
    db = home / "runs.sqlite"
    out = tmp_path / "out.jsonl"
    proc = start_batch([str(PLAN), str(docs), "--input", "image_path", "--out", str(out)], env)
    wait_for(lambda: documents_done(db) >= 12, "a dozen documents", proc)
    paid.hold.set()  # calls from now on are never answered: the process is killed with nothing in flight
    wait_for(paid.quiet, "the calls in flight to be answered", proc)
    wait_for(stable(db), "the batch to record what it got", proc)
    kill(proc)
    assert paid.held > 0  # killed with calls waiting: mid-batch, not between documents
    paid.hold.clear()
    paid.release.set()
    rid = the_run_id(db)
    assert documents_done(db) < 40

    resumed = cli("resume", rid, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert paid.paid == clean_paid  # every call paid exactly as often as in the run that was never killed
    lines = read_lines(out)
    assert len(lines) == 40 and len({line["document"] for line in lines}) == 40
    assert all(line["status"] == "succeeded" for line in lines)
    assert set(finished_per_step(db, rid).values()) == {1}
    ledger = cli_json("cost", rid, env=env)
    assert ledger["model_calls"] == sum(clean_paid.values())  # recorded once each, across both sessions
    assert ledger["documents_done"] == 40 and ledger["sessions"] == 2


# --- provider storms -------------------------------------------------------------------------------------------


def planner_env(server: FakeLLMServer) -> dict[str, str]:
    return clean_env(PLANNER_PROVIDER="openai", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=server.openai_url,
                     PLANNER_MODEL="gpt-4o")  # fmt: skip


REQUEST = "Tally the spending on these shop slips by category"


def test_a_429_and_500_storm_from_the_planner_is_retried_with_backoff_and_the_run_completes(tmp_path: Path) -> None:
    docs = receipts(tmp_path / "docs", 6)
    plan_text = json.dumps(RECEIPT_PLAN)
    with FakeLLMServer() as server:
        server.enqueue(Failure(429, retry_after=0.05), Failure(500), plan_text)
        proc = cli("batch", REQUEST, str(docs), "--input", "image_path", env=planner_env(server))
        assert len(server.requests) == 3  # two failures, retried (the SDK's 2 retries), then the plan
    assert proc.returncode == 0, proc.stderr
    [run] = cli_json("runs")
    ledger = cli_json("cost", run["id"])
    assert ledger["planner_calls"] == 1 and ledger["documents_done"] == 6 and ledger["planner_cost_usd"] > 0


def test_a_storm_longer_than_the_retries_fails_the_run_which_is_kept_and_resumes(tmp_path: Path) -> None:
    docs = receipts(tmp_path / "docs", 6)
    with FakeLLMServer() as server:
        server.enqueue(Failure(500), Failure(500), Failure(500))
        env = planner_env(server)
        first = cli("batch", REQUEST, str(docs), "--input", "image_path", env=env)
        assert len(server.requests) == 3  # one call and its 2 retries: bounded
        assert first.returncode == 1 and "planning failed" in first.stderr and "Traceback" not in first.stderr
        [run] = cli_json("runs")
        assert run["status"] == "failed"
        server.enqueue(json.dumps(RECEIPT_PLAN))
        second = cli("resume", run["id"], env=env)
        assert len(server.requests) == 4
    assert second.returncode == 0, second.stderr
    ledger = cli_json("cost", run["id"])
    assert ledger["planner_calls"] == 1 and ledger["documents_done"] == ledger["documents_succeeded"] == 6


# --- the store's file -------------------------------------------------------------------------------------------


def test_a_store_locked_by_another_process_is_waited_for_then_a_clear_error(tmp_path: Path) -> None:
    store = Path(clean_env()["ORCHESTRATOR_HOME"]) / "runs.sqlite"
    assert cli("runs").returncode == 0  # creates the store
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3,sys; d=sqlite3.connect(sys.argv[1], isolation_level=None); "
         "d.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.readline()", str(store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = cli("run", str(PLAN), "--input", f"image_path={REPO / 'examples/receipts/cafe.txt'}",
                   env=clean_env(STORE_BUSY_TIMEOUT_S="0.5"))  # fmt: skip
    finally:
        holder.communicate("\n", timeout=30)
    assert proc.returncode == 1
    assert "is locked by another process (waited 0.5s)" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("damage", ["garbage", "newer"])
def test_an_unusable_store_is_refused_and_not_overwritten(tmp_path: Path, damage: str) -> None:
    store = Path(clean_env()["ORCHESTRATOR_HOME"]) / "runs.sqlite"
    if damage == "garbage":
        store.write_bytes(b"\x00\x01 not a database " * 100)
        message = "is not a SQLite database"
    else:
        assert cli("runs").returncode == 0
        db = sqlite3.connect(store)
        db.execute("PRAGMA user_version = 7")
        db.close()
        message = "its schema is version 7, newer than this orchestrator knows"
    before = store.read_bytes()
    for args in (["runs"], ["run", str(PLAN), "--input", f"image_path={REPO / 'examples/receipts/cafe.txt'}"]):
        proc = cli(*args)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
        assert "Nothing was written to it" in proc.stderr
    assert store.read_bytes() == before


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_batch_with_a_clear_error_and_the_run_resumes(tmp_path: Path, tiny_disk: Path) -> None:
    docs = receipts(tmp_path / "docs", 150)
    out = tmp_path / "out.jsonl"
    env = clean_env(ORCHESTRATOR_STORE=str(tiny_disk / "runs.sqlite"))
    first = cli("batch", str(PLAN), str(docs), "--input", "image_path", "--out", str(out), env=env)
    assert first.returncode == 1, first.stderr
    assert "the disk is full" in first.stderr and "Traceback" not in first.stderr
    db = tiny_disk / "runs.sqlite"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    rid = the_run_id(db)
    kept = documents_done(db)
    assert 0 < kept < 150
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    second = cli("resume", rid, env=env)
    assert second.returncode == 0, second.stderr
    lines = read_lines(out)
    assert len(lines) == 150 and len({line["document"] for line in lines}) == 150
    assert set(finished_per_step(db, rid).values()) == {1}


def test_ctrl_c_mid_batch_records_the_run_as_cancelled_and_it_resumes(tmp_path: Path) -> None:
    docs = receipts(tmp_path / "docs", 80)
    out = tmp_path / "out.jsonl"
    env = clean_env()
    db = Path(env["ORCHESTRATOR_HOME"]) / "runs.sqlite"
    proc = start_batch([str(PLAN), str(docs), "--input", "image_path", "--out", str(out)], env)
    wait_for(lambda: documents_done(db) >= 20, "twenty documents", proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert proc.stderr is not None and "resume it with: orchestrator resume" in proc.stderr.read()
    proc.stderr.close()
    rid = the_run_id(db)
    assert query(db, f"SELECT status FROM runs WHERE id = '{rid}'") == [("cancelled",)]
    resumed = cli("resume", rid, env=env)
    assert resumed.returncode == 0, resumed.stderr
    lines = read_lines(out)
    assert len(lines) == 80 and len({line["document"] for line in lines}) == 80
    assert set(finished_per_step(db, rid).values()) == {1}
