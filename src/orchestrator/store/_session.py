"""StoreRun: one run being recorded (new or resumed), as the commands and the batch runner use it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import InputError
from orchestrator.ids import new_run_id
from orchestrator.store._recorder import StepRecorder
from orchestrator.store._sqlite import RunRecord, RunStore

if TYPE_CHECKING:
    from orchestrator.plan.validate import CompiledPlan
    from orchestrator.settings import Settings


def open_store(settings: Settings | None = None) -> RunStore:
    """The run store the settings name (``ORCHESTRATOR_STORE``, else ``<ORCHESTRATOR_HOME>/runs.sqlite``)."""
    from orchestrator.settings import current_settings

    s = settings or current_settings()
    return RunStore.open(
        s.store_path, busy_timeout_s=s.store_busy_timeout_s, sync="full" if s.store_sync == "full" else "normal"
    )


def plan_tools(compiled: CompiledPlan) -> dict[str, tuple[str, str, str]]:
    """step id -> (tool, kind, tool version), for recording steps that never ran."""
    return {sid: (cs.tool_name, cs.kind, cs.tool.spec.version) for sid, cs in compiled.steps.items()}


@dataclass
class StoreRun:
    """A run being recorded into a store: its id, this session, and the outputs earlier sessions finished.

    Attributes:
        completed: document -> step id -> output of every step that succeeded in an earlier session (a
            resumed run passes them to the executor as ``completed``; they are not run again).
    """

    store: RunStore
    run_id: str
    session: int = 1
    tool_cache: bool = True
    completed: dict[str, dict[str, Any]] = field(default_factory=dict)
    tools: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    recorders: list[StepRecorder] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        store: RunStore,
        *,
        kind: str,
        request: str,
        plan_data: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        documents: Iterable[str] = ("",),
        run_id: str | None = None,
        tool_cache: bool = True,
    ) -> StoreRun:
        """Record a new run (and its plan, when known) and return it."""
        plan_id = store.save_plan(plan_data) if plan_data is not None else None
        rid = run_id or new_run_id()
        store.create_run(
            rid,
            kind=kind,
            request=request,
            plan_id=plan_id,
            inputs=inputs,
            options={**(options or {}), "pid": os.getpid()},
            documents=documents,
        )
        return cls(store, rid, tool_cache=tool_cache)

    @classmethod
    def resume(cls, store: RunStore, run: RunRecord, *, tool_cache: bool = True) -> StoreRun:
        """Continue a recorded run in a new session; the steps it finished are loaded to be reused."""
        session = store.begin_session(run.id)
        return cls(store, run.id, session=session, tool_cache=tool_cache, completed=store.finished_steps_by_doc(run.id))

    def recorder(self, doc: str = "") -> StepRecorder:
        """A step hook recording one document (``""`` for a single run)."""
        rec = StepRecorder(
            self.store, self.run_id, doc, session=self.session, tool_cache=self.tool_cache, tools=self.tools
        )
        self.recorders.append(rec)
        return rec

    def raise_if_failed(self) -> None:
        """Raise the first store error a recorder met (the run was stopped by it)."""
        for rec in self.recorders:
            if rec.error is not None:
                raise rec.error


def find_run(store: RunStore, run_id: str) -> RunRecord:
    """A recorded run by id (or a unique prefix); a clear error when there is none."""
    run = store.find_run(run_id)
    if run is None:
        raise InputError(f"no run {run_id!r} in the run store {store.path} (see `orchestrator runs`)")
    return run


__all__ = ["StoreRun", "find_run", "open_store", "plan_tools"]
