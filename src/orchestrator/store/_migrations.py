"""The run store's schema: ordered, named migrations, each applied once in its own transaction.

``PRAGMA user_version`` holds how many have been applied, and ``schema_migrations`` names them. A database
whose version is higher than this code knows was written by a newer orchestrator: it is refused before
anything is written to it. Add a migration by appending a function to :data:`MIGRATIONS`; never edit one
that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # One statement at a time: executescript() would commit the migration's open transaction first.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE plans (
            id TEXT PRIMARY KEY,              -- SHA-256 of the plan's canonical JSON
            goal TEXT NOT NULL,
            plan_json TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,               -- run, ask, batch
            request TEXT NOT NULL,            -- the request in plain language, or the plan file
            plan_id TEXT REFERENCES plans(id),
            status TEXT NOT NULL,             -- running, succeeded, partial, failed, cancelled
            inputs_json TEXT NOT NULL,        -- the run's inputs (a batch: the inputs besides the document)
            options_json TEXT NOT NULL,       -- input_name, concurrency, out ... (what resume needs)
            started_at REAL NOT NULL,
            finished_at REAL,
            sessions INTEGER NOT NULL DEFAULT 1,
            error TEXT
        );
        CREATE INDEX runs_started ON runs(started_at);
        CREATE TABLE documents (
            run_id TEXT NOT NULL REFERENCES runs(id),
            doc TEXT NOT NULL,                -- the document's path ('' for a single run)
            seq INTEGER NOT NULL,             -- order in the batch
            status TEXT NOT NULL,             -- pending, succeeded, partial, failed, error, cancelled
            result_json TEXT,                 -- the batch's output line for it
            session INTEGER,
            started_at REAL,
            finished_at REAL,
            PRIMARY KEY (run_id, doc)
        );
        CREATE TABLE steps (
            run_id TEXT NOT NULL,
            doc TEXT NOT NULL,
            step_id TEXT NOT NULL,
            tool TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            inputs_hash TEXT,                 -- SHA-256 of the resolved arguments (deterministic tools)
            output_json TEXT,
            error TEXT,
            error_type TEXT,
            session INTEGER NOT NULL,
            started_at REAL,
            finished_at REAL,
            duration_s REAL,
            attempts INTEGER NOT NULL,
            modes_json TEXT NOT NULL,
            counts_json TEXT NOT NULL,
            calls INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, doc, step_id)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            doc TEXT NOT NULL,
            at REAL NOT NULL,                 -- seconds since the epoch
            type TEXT NOT NULL,
            step_id TEXT,
            data_json TEXT NOT NULL
        );
        CREATE INDEX events_run ON events(run_id, doc);
        CREATE TABLE planner_calls (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            purpose TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            latency_s REAL NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX planner_calls_run ON planner_calls(run_id);
        CREATE TABLE tool_cache (
            tool TEXT NOT NULL,
            version TEXT NOT NULL,
            args_hash TEXT NOT NULL,
            output_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (tool, version, args_hash)
        );
        """,
    )


Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: tuple[tuple[str, Migration], ...] = (("0001_initial", _initial),)
"""Every migration, in order; the schema version is how many have been applied."""

SCHEMA_VERSION = len(MIGRATIONS)
