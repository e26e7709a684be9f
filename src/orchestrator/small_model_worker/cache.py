"""A persistent cache of small-model answers: a repeated item costs nothing.

One SQLite file (``<ORCHESTRATOR_HOME>/cache/small_model.sqlite``), one row per answer, keyed by a SHA-256
of (back-end and model, task, prompt version, input): the same item asked of another model, another task
or with another label set is a different key. Values are JSON. Lookups and writes go through a worker
thread (:meth:`ResultCache.get_many` / :meth:`ResultCache.put_many` are blocking; the async wrappers are
what the worker uses), one connection per operation, so threads and processes may share the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from orchestrator.small_model_worker.tasks import PROMPT_VERSION

__all__ = ["ResultCache", "cache_key"]

logger = logging.getLogger(__name__)

_CHUNK = 500  # SQLite parameters per query, well under its limit


def cache_key(backend: str, task: str, item: Any) -> str:
    """The key of one answer: back-end and model (``ollama:phi3``), task, prompt version and input."""
    material = json.dumps([backend, task, PROMPT_VERSION, item], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResultCache:
    """Answers on disk, in ``folder / "small_model.sqlite"``."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / "small_model.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT, created REAL)")
        return connection

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The cached values among `keys` (blocking)."""
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        if not unique:
            return found
        connection = self._connect()
        try:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, value in connection.execute(f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
        finally:
            connection.close()
        return found

    def put_many(self, values: Mapping[str, Any]) -> None:
        """Store answers (blocking)."""
        if not values:
            return
        now = time.time()
        connection = self._connect()
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO answers (key, value, created) VALUES (?, ?, ?)",
                    [(key, json.dumps(value, ensure_ascii=False), now) for key, value in values.items()],
                )
        finally:
            connection.close()

    async def aget(self, keys: Sequence[str]) -> dict[str, Any]:
        """:meth:`get_many` in a worker thread; a broken cache file is logged and treated as empty."""
        try:
            return await anyio.to_thread.run_sync(self.get_many, list(keys))
        except (sqlite3.Error, OSError, ValueError) as exc:
            logger.warning("small-model cache %s unreadable (%s); asking the model", self.path, exc)
            return {}

    async def aput(self, values: Mapping[str, Any]) -> None:
        """:meth:`put_many` in a worker thread; a failure to write is logged, never raised."""
        try:
            await anyio.to_thread.run_sync(self.put_many, dict(values))
        except (sqlite3.Error, OSError) as exc:
            logger.warning("small-model cache %s not written (%s)", self.path, exc)

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r})"
