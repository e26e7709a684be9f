"""RunStore: runs, documents, step results, events, planner calls and the tool cache in one SQLite file.

WAL journal (readers never block the writer, several processes may write), a busy timeout (a writer waits
for another's lock, then fails with a clear error), and every write is one ``BEGIN IMMEDIATE`` transaction:
a step's result and its events are recorded whole or not at all. ``synchronous=NORMAL`` by default: a
killed process loses nothing it committed; a power cut may lose the last commits (never the database's
consistency), and those steps run again on resume. ``sync="full"`` makes every commit durable.

Foreign errors are mapped here, at the border: a lock held too long or a full disk becomes
:class:`~orchestrator.errors.StoreError`; a file that is not a SQLite database, is damaged, or was written
by a newer schema becomes :class:`~orchestrator.errors.StoreUnusableError`, and nothing is written to it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import StoreError, StoreUnusableError
from orchestrator.store._migrations import MIGRATIONS, SCHEMA_VERSION

_HEADER = b"SQLite format 3\x00"
DB_NAME = "runs.sqlite"

Sync = Literal["normal", "full"]


# ASCII JSON: a lone surrogate in a tool's output is escaped (SQLite takes only valid UTF-8) and reads back as is.
_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def dumps(value: Any) -> str:
    """Compact JSON as the store keeps it (one encoder, made once: json.dumps with options makes one per call)."""
    return _ENCODE(value)


def clean(text: str | None) -> str | None:
    """Free text (an error, a request) as valid UTF-8: lone surrogates become backslash escapes."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def plan_id_of(plan_data: Mapping[str, Any]) -> str:
    """A plan's id: the SHA-256 of its canonical JSON (the same plan is stored once)."""
    return hashlib.sha256(json.dumps(plan_data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """One row of ``orchestrator runs``."""

    id: str
    kind: str
    request: str
    plan_id: str | None
    status: str
    inputs: dict[str, Any]
    options: dict[str, Any]
    started_at: float
    finished_at: float | None
    sessions: int
    error: str | None
    documents: int = 0
    documents_done: int = 0
    cost_usd: float = 0.0

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True)
class StepRecord:
    """One step of one document, as recorded."""

    run_id: str
    doc: str
    step_id: str
    tool: str
    tool_version: str
    kind: str
    status: str
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    session: int = 1
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    modes: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    inputs_hash: str | None = None


@dataclass(frozen=True)
class DocumentRecord:
    run_id: str
    doc: str
    seq: int
    status: str
    result: dict[str, Any] | None
    session: int | None
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class EventRecord:
    doc: str
    at: float
    type: str
    step_id: str | None
    data: dict[str, Any]


_STEP_COLUMNS = (
    "run_id, doc, step_id, tool, tool_version, kind, status, inputs_hash, output_json, error, error_type, session, "
    "started_at, finished_at, duration_s, attempts, modes_json, counts_json, calls, input_tokens, output_tokens, "
    "cost_usd"
)


class RunStore:
    """The run store. Open it with :meth:`RunStore.open`; one instance per thread (SQLite connections are not
    shared across threads); several processes may open the same file."""

    def __init__(self, db: sqlite3.Connection, path: Path, busy_timeout_s: float):
        self._db = db
        self.path = path
        self.busy_timeout_s = busy_timeout_s

    # --- opening ------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, busy_timeout_s: float = 10.0, sync: Sync = "normal") -> RunStore:
        """Open (creating or migrating) the store at `path`, a file or a folder (then ``<folder>/runs.sqlite``).

        Raises:
            StoreUnusableError: the file is not a SQLite database, is damaged, or has a newer schema.
            StoreError: it cannot be created, or another process held its lock past the busy timeout.
        """
        path = Path(path)
        if path.is_dir():
            path = path / DB_NAME
        _check_header(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"run store {path}: cannot open it ({_reason(exc)})", path=str(path)) from None
        store = cls(db, path, busy_timeout_s)
        try:
            with store._mapped("opening it"):
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreUnusableError(
                        f"run store {path}: its schema is version {version}, newer than this orchestrator knows "
                        f"({SCHEMA_VERSION}); upgrade orchestrator, or point ORCHESTRATOR_HOME elsewhere. "
                        "Nothing was written to it.",
                        path=str(path),
                    )
                db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA synchronous = {'FULL' if sync == 'full' else 'NORMAL'}")
                if version < SCHEMA_VERSION:
                    store._migrate()
        except BaseException:
            db.close()
            raise
        return store

    def _migrate(self) -> None:
        for index, (name, migration) in enumerate(MIGRATIONS, start=1):
            with self._write(f"applying migration {name}"):
                # Checked again under the write lock: another process may have migrated meanwhile.
                if self._db.execute("PRAGMA user_version").fetchone()[0] >= index:
                    continue
                if index == 1:
                    self._db.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(id INTEGER PRIMARY KEY, name TEXT, applied_at REAL)"
                    )
                migration(self._db)
                self._db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (index, name, time.time()))
                self._db.execute(f"PRAGMA user_version = {index}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions and error mapping ------------------------------------------------------------------

    @contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError, UnicodeEncodeError) as exc:
            raise self._error(exc, action) from None

    def _error(self, exc: Exception, action: str) -> StoreError | StoreUnusableError:
        text = str(exc).lower()
        if isinstance(exc, UnicodeEncodeError):
            return StoreError(f"run store {self.path}: cannot keep text that is not valid UTF-8 (while {action})")
        where = f"run store {self.path}"
        if "locked" in text or "busy" in text:
            return StoreError(
                f"{where} is locked by another process (waited {self.busy_timeout_s:g}s) while {action}; "
                "try again when it is done",
                path=str(self.path),
            )
        if "full" in text or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "disk i/o" in text:
            return StoreError(
                f"{where}: the disk is full (while {action}); everything recorded before is kept: free some "
                "space, then resume the run",
                path=str(self.path),
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreUnusableError(
                f"{where} is damaged ({exc}); move it aside to start a new store. Nothing was written to it.",
                path=str(self.path),
            )
        return StoreError(f"{where}: {exc} (while {action})", path=str(self.path))

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or none of it (rolled back on any error)."""
        db = self._db
        with self._mapped(action):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the rollback happened with the failure (e.g. SQLITE_FULL)
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mapped("reading it"):
            cursor = self._db.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def _read_paged(self, sql: str, params: Sequence[Any], page: int) -> Iterator[sqlite3.Row]:
        """:meth:`_read`, fetched `page` rows at a time (for results too big to hold)."""
        with self._mapped("reading it"):
            cursor = self._db.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            while rows := cursor.fetchmany(page):
                yield from rows

    # --- plans and runs ----------------------------------------------------------------------------------

    def save_plan(self, plan_data: Mapping[str, Any]) -> str:
        """Store a plan (its JSON data) once; returns its id."""
        pid = plan_id_of(plan_data)
        with self._write("saving the plan") as db:
            db.execute(
                "INSERT OR IGNORE INTO plans VALUES (?, ?, ?, ?)",
                (pid, str(plan_data.get("goal", "")), dumps(plan_data), time.time()),
            )
        return pid

    def load_plan(self, plan_id: str) -> dict[str, Any]:
        rows = self._read("SELECT plan_json FROM plans WHERE id = ?", (plan_id,))
        if not rows:
            raise StoreError(f"run store {self.path}: plan {plan_id} is missing", path=str(self.path))
        data: dict[str, Any] = json.loads(rows[0]["plan_json"])
        return data

    def create_run(
        self,
        run_id: str,
        *,
        kind: str,
        request: str,
        plan_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        documents: Iterable[str] = ("",),
    ) -> None:
        """Record a new run and its documents (pending), in one transaction (`documents` is read lazily)."""
        now = time.time()
        with self._write("recording the run") as db:
            db.execute(
                "INSERT INTO runs (id, kind, request, plan_id, status, inputs_json, options_json, started_at) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                (run_id, kind, clean(request), plan_id, dumps(dict(inputs or {})), dumps(dict(options or {})), now),
            )
            db.executemany(
                "INSERT INTO documents (run_id, doc, seq, status) VALUES (?, ?, ?, 'pending')",
                ((run_id, doc, seq) for seq, doc in enumerate(documents)),
            )

    def set_plan(self, run_id: str, plan_id: str) -> None:
        with self._write("recording the plan") as db:
            db.execute("UPDATE runs SET plan_id = ? WHERE id = ?", (plan_id, run_id))

    def begin_session(self, run_id: str) -> int:
        """A resumed run starts a new session; returns its number."""
        with self._write("resuming the run") as db:
            db.execute(
                "UPDATE runs SET sessions = sessions + 1, status = 'running', finished_at = NULL, error = NULL "
                "WHERE id = ?",
                (run_id,),
            )
            row = db.execute("SELECT sessions FROM runs WHERE id = ?", (run_id,)).fetchone()
        return int(row[0])

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        with self._write("finishing the run") as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                (status, time.time(), clean(error), run_id),
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._runs("WHERE r.id = ?", (run_id,))
        return rows[0] if rows else None

    def find_run(self, prefix: str) -> RunRecord | None:
        """A run by its id or a unique prefix of it (as ``git`` takes commits)."""
        exact = self.get_run(prefix)
        if exact is not None or len(prefix) < 4:
            return exact
        rows = self._read("SELECT id FROM runs WHERE id LIKE ? LIMIT 2", (prefix.replace("%", "") + "%",))
        return self.get_run(rows[0]["id"]) if len(rows) == 1 else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The latest runs, newest first."""
        return self._runs("ORDER BY r.started_at DESC LIMIT ?", (limit,))

    def _runs(self, where: str, params: Sequence[Any]) -> list[RunRecord]:
        sql = (
            "SELECT r.*, "
            "(SELECT COUNT(*) FROM documents d WHERE d.run_id = r.id) AS n_docs, "
            "(SELECT COUNT(*) FROM documents d WHERE d.run_id = r.id AND d.status NOT IN ('pending', 'cancelled'))"
            " AS n_done, "
            "(SELECT COALESCE(SUM(s.cost_usd), 0) FROM steps s WHERE s.run_id = r.id) "
            "+ (SELECT COALESCE(SUM(p.cost_usd), 0) FROM planner_calls p WHERE p.run_id = r.id) AS cost "
            f"FROM runs r {where}"
        )
        return [
            RunRecord(
                id=row["id"],
                kind=row["kind"],
                request=row["request"],
                plan_id=row["plan_id"],
                status=row["status"],
                inputs=json.loads(row["inputs_json"]),
                options=json.loads(row["options_json"]),
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                sessions=row["sessions"],
                error=row["error"],
                documents=row["n_docs"],
                documents_done=row["n_done"],
                cost_usd=row["cost"],
            )
            for row in self._read(sql, params)
        ]

    # --- documents ---------------------------------------------------------------------------------------

    def finish_document(
        self, run_id: str, doc: str, status: str, result: Mapping[str, Any], session: int | None = None
    ) -> None:
        """Record a document's outcome (its batch output line) in one transaction."""
        with self._write("recording a document") as db:
            db.execute(
                "UPDATE documents SET status = ?, result_json = ?, finished_at = ?, session = COALESCE(?, session) "
                "WHERE run_id = ? AND doc = ?",
                (status, dumps(dict(result)), time.time(), session, run_id, doc),
            )

    def documents(self, run_id: str) -> list[DocumentRecord]:
        """A run's documents in batch order."""
        return list(self.iter_documents(run_id))

    def iter_documents(self, run_id: str, *, page: int = 500) -> Iterator[DocumentRecord]:
        """A run's documents in batch order, read `page` rows at a time (for batches too big to hold)."""
        for row in self._read_paged("SELECT * FROM documents WHERE run_id = ? ORDER BY seq", (run_id,), page):
            yield DocumentRecord(
                run_id=row["run_id"],
                doc=row["doc"],
                seq=row["seq"],
                status=row["status"],
                result=json.loads(row["result_json"]) if row["result_json"] else None,
                session=row["session"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
            )

    # --- steps and events --------------------------------------------------------------------------------

    def record_step(self, step: StepRecord, events: Sequence[EventRecord] = (), *, cache: bool = False) -> None:
        """Record one step's result with the events that led to it, whole or not at all.

        With `cache` (a deterministic tool that succeeded, ``inputs_hash`` set), its output also goes to the
        tool cache, keyed by tool, tool version and arguments, for any later run to reuse.
        """
        row = (
            step.run_id,
            step.doc,
            step.step_id,
            step.tool,
            step.tool_version,
            step.kind,
            step.status,
            step.inputs_hash,
            None if step.status != "succeeded" else dumps(step.output),
            clean(step.error),
            step.error_type,
            step.session,
            step.started_at,
            step.finished_at,
            step.duration_s,
            step.attempts,
            dumps(list(step.modes)),
            dumps(step.counts),
            step.calls,
            step.input_tokens,
            step.output_tokens,
            step.cost_usd,
        )
        event_rows = [(step.run_id, e.doc, e.at, e.type, e.step_id, dumps(e.data)) for e in events]
        db = self._db
        # The hot path of a recorded run (one transaction per step), so without _write's context managers.
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(_INSERT_STEP, row)
                if event_rows:
                    db.executemany(_INSERT_EVENT, event_rows)
                if cache and step.status == "succeeded" and step.inputs_hash is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO tool_cache VALUES (?, ?, ?, ?, ?)",
                        (step.tool, step.tool_version, step.inputs_hash, row[8], time.time()),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
        except (sqlite3.Error, OSError, UnicodeEncodeError) as exc:
            raise self._error(exc, f"recording step {step.step_id!r}") from None

    def record_events(self, run_id: str, events: Sequence[EventRecord]) -> None:
        if events:
            with self._write("recording events") as db:
                _insert_events(db, run_id, events)

    def finished_steps(self, run_id: str, doc: str = "") -> dict[str, Any]:
        """The outputs of a document's steps that succeeded: what a resumed run reuses instead of running."""
        rows = self._read(
            "SELECT step_id, output_json FROM steps WHERE run_id = ? AND doc = ? AND status = 'succeeded'",
            (run_id, doc),
        )
        return {row["step_id"]: json.loads(row["output_json"]) for row in rows}

    def finished_steps_by_doc(self, run_id: str) -> dict[str, dict[str, Any]]:
        """:meth:`finished_steps` for every document of a run at once."""
        out: dict[str, dict[str, Any]] = {}
        rows = self._read(
            "SELECT doc, step_id, output_json FROM steps WHERE run_id = ? AND status = 'succeeded'", (run_id,)
        )
        for row in rows:
            out.setdefault(row["doc"], {})[row["step_id"]] = json.loads(row["output_json"])
        return out

    def steps(self, run_id: str, doc: str | None = None) -> list[StepRecord]:
        """A run's recorded steps (of one document, or all), in the order they started."""
        return list(self.iter_steps(run_id, doc))

    def iter_steps(self, run_id: str, doc: str | None = None, *, page: int = 500) -> Iterator[StepRecord]:
        """:meth:`steps`, read `page` rows at a time (for runs too big to hold)."""
        where, params = ("run_id = ?", (run_id,)) if doc is None else ("run_id = ? AND doc = ?", (run_id, doc))
        for row in self._read_paged(f"SELECT * FROM steps WHERE {where} ORDER BY started_at, doc", params, page):
            yield StepRecord(
                run_id=row["run_id"],
                doc=row["doc"],
                step_id=row["step_id"],
                tool=row["tool"],
                tool_version=row["tool_version"],
                kind=row["kind"],
                status=row["status"],
                output=json.loads(row["output_json"]) if row["output_json"] is not None else None,
                error=row["error"],
                error_type=row["error_type"],
                session=row["session"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                duration_s=row["duration_s"],
                attempts=row["attempts"],
                modes=tuple(json.loads(row["modes_json"])),
                counts=json.loads(row["counts_json"]),
                calls=row["calls"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cost_usd=row["cost_usd"],
                inputs_hash=row["inputs_hash"],
            )

    def events(self, run_id: str, doc: str | None = None) -> list[EventRecord]:
        where, params = ("run_id = ?", (run_id,)) if doc is None else ("run_id = ? AND doc = ?", (run_id, doc))
        rows = self._read(f"SELECT doc, at, type, step_id, data_json FROM events WHERE {where} ORDER BY id", params)
        return [EventRecord(r["doc"], r["at"], r["type"], r["step_id"], json.loads(r["data_json"])) for r in rows]

    # --- planner calls -----------------------------------------------------------------------------------

    def record_planner_call(
        self,
        run_id: str,
        *,
        purpose: str,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        latency_s: float,
    ) -> None:
        with self._write("recording a planner call") as db:
            db.execute(
                "INSERT INTO planner_calls (run_id, purpose, provider, model, input_tokens, output_tokens, cost_usd, "
                "latency_s, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, purpose, provider, model, input_tokens, output_tokens, cost_usd, latency_s, time.time()),
            )

    def planner_calls(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._read("SELECT * FROM planner_calls WHERE run_id = ? ORDER BY id", (run_id,))
        return [dict(row) for row in rows]

    # --- the cache of deterministic tools ----------------------------------------------------------------

    def cached_output(self, tool: str, version: str, args_hash: str) -> tuple[Any] | None:
        """A deterministic tool's recorded output for these arguments, as a 1-tuple, or None."""
        with self._mapped("reading the tool cache"):
            row = self._db.execute(
                "SELECT output_json FROM tool_cache WHERE tool = ? AND version = ? AND args_hash = ?",
                (tool, version, args_hash),
            ).fetchone()
        return None if row is None else (json.loads(row[0]),)


_INSERT_STEP = f"INSERT OR REPLACE INTO steps ({_STEP_COLUMNS}) VALUES ({', '.join('?' * 22)})"
_INSERT_EVENT = "INSERT INTO events (run_id, doc, at, type, step_id, data_json) VALUES (?, ?, ?, ?, ?, ?)"


def _insert_events(db: sqlite3.Connection, run_id: str, events: Sequence[EventRecord]) -> None:
    db.executemany(_INSERT_EVENT, [(run_id, e.doc, e.at, e.type, e.step_id, dumps(e.data)) for e in events])


def _check_header(path: Path) -> None:
    """Refuse a file that is not a SQLite database before SQLite (or anything else) writes to it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"run store {path}: cannot read it ({_reason(exc)})", path=str(path)) from None
    if head and head != _HEADER:
        raise StoreUnusableError(
            f"run store {path} is not a SQLite database (damaged, or another file); move it aside to start a new "
            "store. Nothing was written to it.",
            path=str(path),
        )


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
