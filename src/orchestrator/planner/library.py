"""The plan library: plans cached by request in SQLite, so a repeated request costs no model call.

- An **exact** repeat (same request after normalising case, spacing and end punctuation) reuses the plan.
- A **similar** request (cosine similarity of MiniLM sentence embeddings at or above `threshold`, default
  0.85) reuses it too, run with the new request's inputs. Inputs are matched by name: the stored plan
  must declare every context key given, and every input it requires must be given.
- Every plan served is validated again against the current tool registry; one that no longer validates
  is passed over.

Rows have a `source`: ``seed`` (the shipped example plans, ``examples/*.json``, whose ``goal`` is the
request), ``model`` (plans a planner model wrote) or ``user``. The planner serves seeds only in
``provider="library"`` mode, so a configured model still plans requests it has not planned before.

The database is ``<ORCHESTRATOR_HOME>/plans.sqlite``. Database work runs in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import unicodedata
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from orchestrator.embeddings import Embedder, cosine
from orchestrator.errors import ConfigurationError, InputError
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.plan.limits import ModelPlanLimits
from orchestrator.plan.model import Plan
from orchestrator.plan.validate import check_plan
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings, current_settings

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.85
DB_NAME = "plans.sqlite"
SOURCES = ("seed", "model", "user")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    plan TEXT NOT NULL,
    source TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    embedding BLOB,
    created_at TEXT NOT NULL,
    used_at TEXT,
    hits INTEGER NOT NULL DEFAULT 0,
    UNIQUE (key, digest)
);
CREATE INDEX IF NOT EXISTS plans_key ON plans (key);
"""


def normalise_request(request: str) -> str:
    """The cache key of a request: Unicode-normalised, lower case, single spaces, no quotes or end punctuation."""
    text = unicodedata.normalize("NFKC", request).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip("\"'`“”‘’ ").rstrip(".!?;:,… ").strip()


def default_seed_paths() -> list[Path]:
    """The shipped example plans: ``examples/*.json`` of a source checkout, else the copies in the wheel."""
    examples = Path(__file__).resolve().parents[3] / "examples"
    if examples.is_dir():
        return sorted(examples.glob("*.json"))
    packaged = Path(__file__).resolve().parent / "seeds"
    return sorted(packaged.glob("*.json")) if packaged.is_dir() else []


@dataclass(frozen=True)
class LibraryMatch:
    """A stored plan that serves a request.

    Attributes:
        plan: the plan (for a similar match, its goal is the new request).
        match: ``exact`` or ``similar``.
        similarity: cosine similarity of the requests (1.0 for an exact match).
        request: the stored request it was planned for.
        source: ``seed``, ``model`` or ``user``.
        origin: where it came from (the example file, or the provider and model).
    """

    plan: Plan
    match: str
    similarity: float
    request: str
    source: str
    origin: str

    def describe(self) -> str:
        """One line for people."""
        if self.match == "exact":
            return f"reused the stored plan for {self.request!r} ({self.source}: {self.origin}), no model call"
        return (
            f"reused the stored plan for the similar request {self.request!r} "
            f"(similarity {self.similarity:.2f}; {self.source}: {self.origin}), no model call"
        )


@dataclass
class Lookup:
    """What a search found: the match, or why the candidates were passed over."""

    match: LibraryMatch | None = None
    rejected: list[str] = field(default_factory=list)
    nearest: tuple[str, float] | None = None


@dataclass
class _Row:
    id: int
    key: str
    request: str
    plan: str
    source: str
    origin: str
    embedding: bytes | None


class PlanLibrary:
    """Plans by request, in SQLite.

    Args:
        path: the database file (default: ``<settings.orchestrator_home>/plans.sqlite``).
        settings: where ``orchestrator_home`` comes from (default: :func:`current_settings`).
        embedder: sentence embeddings for similar requests (None: exact matches only).
        threshold: the least cosine similarity that counts as the same request.
        seeds: plan files to seed from (default: :func:`default_seed_paths`; ``()`` for none).
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        seeds: Iterable[Path | str] | None = None,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigurationError(f"plan library threshold must be in (0, 1], got {threshold}")
        if path is None:
            settings = settings if settings is not None else current_settings()
            path = Path(settings.orchestrator_home) / DB_NAME
        self.path = Path(path)
        self.embedder = embedder
        self.threshold = threshold
        self._seeds = [Path(p) for p in (default_seed_paths() if seeds is None else seeds)]
        self._ready = False

    # -- storage -------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the plan library at {self.path}: {exc}") from exc
        if not self._ready:
            conn.executescript(_SCHEMA)
            self._seed(conn)
            self._ready = True
        return conn

    def _seed(self, conn: sqlite3.Connection) -> None:
        for path in self._seeds:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                logger.warning("plan library: skipping seed %s: %s", path, exc)
                continue
            goal = data.get("goal") if isinstance(data, dict) else None
            if not isinstance(goal, str) or not goal.strip():
                continue
            text = json.dumps(data, sort_keys=True)
            digest = _digest(text)
            with conn:
                conn.execute(
                    "DELETE FROM plans WHERE source = 'seed' AND origin = ? AND digest != ?", (path.name, digest)
                )
                conn.execute(
                    "INSERT OR IGNORE INTO plans (key, request, plan, source, origin, digest, created_at) "
                    "VALUES (?, ?, ?, 'seed', ?, ?, ?)",
                    (normalise_request(goal), goal, text, path.name, digest, _now()),
                )

    def _rows(self, sources: Sequence[str], key: str | None = None) -> list[_Row]:
        marks = ",".join("?" * len(sources))
        sql = f"SELECT id, key, request, plan, source, origin, embedding FROM plans WHERE source IN ({marks})"
        params: list[Any] = list(sources)
        if key is not None:
            sql += " AND key = ?"
            params.append(key)
        sql += " ORDER BY id DESC"
        conn = self._connect()
        try:
            return [_Row(*row) for row in conn.execute(sql, params)]
        finally:
            conn.close()

    def _update(self, sql: str, params: Sequence[Any]) -> None:
        conn = self._connect()
        try:
            with conn:
                conn.execute(sql, params)
        finally:
            conn.close()

    # -- public API ----------------------------------------------------------------------------------

    async def store(self, request: str, plan: Plan, *, source: str = "model", origin: str = "") -> None:
        """Remember `plan` as the answer to `request`."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")
        text = json.dumps(plan.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        await anyio.to_thread.run_sync(
            self._update,
            "INSERT OR IGNORE INTO plans (key, request, plan, source, origin, digest, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (normalise_request(request), request, text, source, origin, _digest(text), _now()),
        )

    async def requests(self, sources: Sequence[str] = SOURCES) -> list[str]:
        """The stored requests, newest first, without repeats."""
        rows = await anyio.to_thread.run_sync(self._rows, list(sources))
        return list(dict.fromkeys(row.request for row in rows))

    async def find(
        self,
        request: str,
        context: Mapping[str, Any] | None,
        registry: ToolRegistry,
        *,
        sources: Sequence[str] = SOURCES,
        similar: bool = True,
    ) -> Lookup:
        """Find a stored plan that serves `request` with `context` as its inputs, valid against `registry`."""
        context = dict(context or {})
        lookup = Lookup()
        key = normalise_request(request)
        for row in await anyio.to_thread.run_sync(self._rows, list(sources), key):
            plan = self._usable(row, context, registry, lookup)
            if plan is not None:
                lookup.match = LibraryMatch(plan, "exact", 1.0, row.request, row.source, row.origin)
                break
        if lookup.match is None and similar and self.embedder is not None:
            await self._find_similar(request, context, registry, sources, lookup)
        if lookup.match is not None:
            await anyio.to_thread.run_sync(
                self._update,
                "UPDATE plans SET hits = hits + 1, used_at = ? WHERE key = ? AND request = ?",
                (_now(), normalise_request(lookup.match.request), lookup.match.request),
            )
        return lookup

    async def _find_similar(
        self,
        request: str,
        context: dict[str, Any],
        registry: ToolRegistry,
        sources: Sequence[str],
        lookup: Lookup,
    ) -> None:
        assert self.embedder is not None
        rows = await anyio.to_thread.run_sync(self._rows, list(sources))
        if not rows:
            return
        missing = [row for row in rows if row.embedding is None]
        if missing:
            vectors = await self.embedder.embed([row.request for row in missing])
            for row, vector in zip(missing, vectors, strict=True):
                row.embedding = array("f", vector).tobytes()
                await anyio.to_thread.run_sync(
                    self._update, "UPDATE plans SET embedding = ? WHERE id = ?", (row.embedding, row.id)
                )
        (query,) = await self.embedder.embed([request])
        scored = sorted(
            ((cosine(query, array("f", row.embedding or b"").tolist()), row) for row in rows),
            key=lambda pair: pair[0],
            reverse=True,
        )
        if scored:
            lookup.nearest = (scored[0][1].request, scored[0][0])
        for score, row in scored:
            if score < self.threshold:
                break
            plan = self._usable(row, context, registry, lookup)
            if plan is not None:
                plan = plan.model_copy(update={"goal": request})
                lookup.match = LibraryMatch(plan, "similar", score, row.request, row.source, row.origin)
                return

    def _usable(self, row: _Row, context: dict[str, Any], registry: ToolRegistry, lookup: Lookup) -> Plan | None:
        try:
            data = json.loads(row.plan)
        except json.JSONDecodeError:
            return None
        compiled, issues = check_plan(data, registry, limits=ModelPlanLimits.from_settings())
        if compiled is None:
            lookup.rejected.append(
                f"the stored plan for {row.request!r} no longer validates: {issues[0].render() if issues else '?'}"
            )
            return None
        try:
            prepare_inputs(compiled.plan.inputs, context)
        except InputError as exc:
            lookup.rejected.append(f"the stored plan for {row.request!r} does not fit the inputs given: {exc}")
            return None
        return compiled.plan


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["DEFAULT_THRESHOLD", "LibraryMatch", "Lookup", "PlanLibrary", "default_seed_paths", "normalise_request"]
