"""StepRecorder: the executor's step hook that writes one document of one run into a RunStore.

It buffers the run's events in memory and writes them with the step result they lead to, in one
transaction per settled step (so a step costs one commit). Skipped and cancelled steps, and the events
after the last step, are written when the run finishes. Deterministic tools (read-only, idempotent, closed
world: see :class:`~orchestrator.registry.ToolAnnotations`) are looked up in the tool cache before they run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.errors import StoreError
from orchestrator.executor.events import (
    Event,
    RunFinished,
    RunNote,
    RunStarted,
    StepCancelled,
    StepResult,
    StepSkipped,
)
from orchestrator.plan.refs import resolve
from orchestrator.store._sqlite import EventRecord, RunStore, StepRecord, plan_id_of

if TYPE_CHECKING:
    from orchestrator.plan.validate import CompiledStep

logger = logging.getLogger(__name__)


def is_deterministic(step: CompiledStep) -> bool:
    """Whether a step's result depends on its arguments alone (its tool says so, and it maps nothing)."""
    hints = getattr(step.tool.spec, "annotations", None)
    return step.for_each is None and hints is not None and hints.read_only and hints.idempotent and not hints.open_world


_MAX_LISTED = 1000
"""A folder argument with more entries than this is not fingerprinted: the step is not cached."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _fingerprint(text: str) -> Any:
    """What a file or folder named by an argument looks like now (size and mtime of it, or of each entry);
    None for text that names nothing; raises LookupError for a folder too big to fingerprint."""
    if not text or len(text) > 4096 or "\n" in text:
        return None
    try:
        info = os.stat(text)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(info.st_mode):
        return [info.st_size, info.st_mtime_ns]
    entries: list[list[Any]] = []
    with os.scandir(text) as listing:
        for entry in listing:
            if len(entries) >= _MAX_LISTED:
                raise LookupError(text)
            try:
                sub = entry.stat()
            except OSError:
                continue
            entries.append([entry.name, sub.st_size, sub.st_mtime_ns])
    return sorted(entries)


def args_hash(args: Any) -> str | None:
    """SHA-256 of arguments as canonical JSON, with the state of every file or folder they name (so a tool
    that reads files is reused only while those files are unchanged); None when that state is too big to take."""
    try:
        files = {text: fp for text in set(_strings(args)) if (fp := _fingerprint(text)) is not None}
    except LookupError:
        return None
    text = json.dumps([args, files], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _event_data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in event.__slots__:
        if name in ("run_id", "t", "step_id"):
            continue
        value = getattr(event, name)
        if hasattr(value, "model_dump"):
            value = value.model_dump()
        elif isinstance(value, tuple):
            value = list(value)
        data[name] = value
    return data


class StepRecorder:
    """Records one document of one run (``doc=""`` for a single run); implements the executor's StepHook.

    Args:
        store: where to write.
        run_id: the store's run id.
        doc: the document (a batch) or "" (a single run).
        session: which session of the run this is (1, then one more per resume).
        tool_cache: reuse and fill the cache of deterministic tools' results.
        tools: step id -> (tool, kind, version) of the plan, to record skipped steps by their tool.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        doc: str = "",
        *,
        session: int = 1,
        tool_cache: bool = True,
        tools: Mapping[str, tuple[str, str, str]] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.doc = doc
        self.session = session
        self.tool_cache = tool_cache
        self.tools = dict(tools or {})
        self.t0 = time.time()
        self.pending: list[EventRecord] = []
        self.unsettled: list[StepRecord] = []  # skipped / cancelled, written at the end
        self.hashes: dict[str, str] = {}
        self.error: StoreError | None = None

    # --- StepHook ----------------------------------------------------------------------------------------

    def lookup(self, step: CompiledStep, outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> tuple[Any] | None:
        if not self.tool_cache or not is_deterministic(step):
            return None
        try:
            args = resolve(step.args, (outputs, inputs, None))
        except Exception:  # the run reports it when it resolves the arguments itself
            return None
        key = args_hash(args)
        if key is None:
            return None
        self.hashes[step.id] = key
        spec = step.tool.spec
        try:
            return self.store.cached_output(spec.name, spec.version, key)
        except StoreError as exc:  # a cache that cannot be read is a miss, not a failure
            logger.warning("%s", exc)
            return None

    def record(self, step: CompiledStep, result: StepResult) -> None:
        spec = step.tool.spec
        self.tools.setdefault(step.id, (result.tool, result.kind, spec.version))
        usage = result.usage
        row = StepRecord(
            run_id=self.run_id,
            doc=self.doc,
            step_id=result.id,
            tool=result.tool,
            tool_version=spec.version,
            kind=result.kind,
            status=result.status,
            output=result.output,
            error=result.error,
            error_type=result.error_type,
            session=self.session,
            started_at=None if result.started_s is None else self.t0 + result.started_s,
            finished_at=None if result.finished_s is None else self.t0 + result.finished_s,
            duration_s=result.duration_s,
            attempts=result.attempts,
            modes=result.modes,
            counts=dict(result.counts),
            calls=usage.calls if usage else 0,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0,
            inputs_hash=self.hashes.get(result.id),
        )
        events, self.pending = self.pending, []
        try:
            self.store.record_step(row, events, cache=row.inputs_hash is not None and "cached" not in row.modes)
        except StoreError as exc:  # nothing of this step is kept (its events neither): on resume it runs again
            self.error = self.error or exc
            raise

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.t0 = time.time() - event.t
        step_id = getattr(event, "step_id", None)
        self.pending.append(EventRecord(self.doc, self.t0 + event.t, event.type, step_id, _event_data(event)))
        if isinstance(event, StepSkipped | StepCancelled):
            tool, kind, version = self.tools.get(event.step_id, ("", "", "1"))
            status = "skipped" if isinstance(event, StepSkipped) else "cancelled"
            at = self.t0 + event.t
            self.unsettled.append(
                StepRecord(
                    self.run_id,
                    self.doc,
                    event.step_id,
                    tool,
                    version,
                    kind,
                    status,
                    error=event.reason,
                    session=self.session,
                    started_at=at,
                    finished_at=at,
                )  # fmt: skip
            )
        elif isinstance(event, RunFinished):
            self.flush()

    # --- the rest ----------------------------------------------------------------------------------------

    def on_note(self, event: Event) -> None:
        """The planner's notes (an ``on_event`` handler for the planner): its calls, and the plan once complete."""
        if not isinstance(event, RunNote):
            return
        data = event.data
        try:
            if data.get("kind") == "planner_call":
                self.store.record_planner_call(
                    self.run_id,
                    purpose=str(data.get("purpose", "plan")),
                    provider=str(data.get("provider", "")),
                    model=str(data.get("model", "")),
                    input_tokens=int(data.get("input_tokens", 0)),
                    output_tokens=int(data.get("output_tokens", 0)),
                    cost_usd=float(data.get("cost_usd", 0.0)),
                    latency_s=float(data.get("latency_s", 0.0)),
                )
            elif data.get("kind") == "plan_complete" and isinstance(data.get("plan"), dict):
                plan = data["plan"]
                self.store.save_plan(plan)
                self.store.set_plan(self.run_id, plan_id_of(plan))
        except StoreError as exc:
            self.error = self.error or exc
            logger.error("%s", exc)

    def flush(self) -> None:
        """Write what is left: the last events and the steps that were skipped or cancelled."""
        events, self.pending = self.pending, []
        rows, self.unsettled = self.unsettled, []
        if self.error is not None:  # the store failed this run: write nothing more that a resume could misread
            return
        try:
            for row in rows:
                self.store.record_step(row)
            self.store.record_events(self.run_id, events)
        except StoreError as exc:
            self.error = self.error or exc
            logger.error("%s", exc)


__all__ = ["StepRecorder", "args_hash", "is_deterministic"]
