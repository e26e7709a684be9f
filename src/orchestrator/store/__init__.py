"""The run store: every run, document, step result, event and model call, in SQLite, for resume and reports.

API (what the executor back-ends and commands use)::

    store = RunStore.open(path)                          # a file or a folder (then <folder>/runs.sqlite)
    run = StoreRun.start(store, kind="batch", request=..., plan_data=plan, documents=[...])
    hook = run.recorder(doc)                             # the executor's StepHook for one document
    with use_step_hook(hook):                            # orchestrator.executor.hooks
        result, _ = await run_compiled(compiled, inputs, completed=run.completed.get(doc))
    store.finish_document(run.run_id, doc, result.status, line)
    store.finish_run(run.run_id, "succeeded")

    store.record_step(StepRecord(...), events)           # one step, whole or not at all (what the hook calls)
    store.finished_steps(run_id, doc)                    # step id -> output of the steps that succeeded
    StoreRun.resume(store, store.get_run(run_id))        # a new session; .completed holds those outputs
    cost_ledger(store, run_id)                           # the cost ledger (orchestrator cost)
    render_report(store, run_id)                         # the self-contained HTML page (orchestrator report)

``orchestrator run``, ``ask`` and ``batch`` record into the store named by the settings (``open_store()``:
``ORCHESTRATOR_STORE``, else ``<ORCHESTRATOR_HOME>/runs.sqlite``); ``--no-store`` turns it off. A step that
finished is never run again when its run resumes, and a deterministic tool's result (read-only, idempotent,
closed-world: :class:`~orchestrator.registry.ToolAnnotations`) is reused across runs, keyed by tool, tool
version and the SHA-256 of its arguments. Errors: :class:`~orchestrator.errors.StoreError` (locked, disk
full: the store is intact, the run resumable) and :class:`~orchestrator.errors.StoreUnusableError`
(a damaged file or a newer schema: nothing is written to it).
"""

from orchestrator.store._ledger import Baseline, CostLedger, cost_ledger
from orchestrator.store._migrations import MIGRATIONS, SCHEMA_VERSION
from orchestrator.store._recorder import StepRecorder, args_hash, is_deterministic
from orchestrator.store._session import StoreRun, find_run, open_store, plan_tools
from orchestrator.store._sqlite import (
    DB_NAME,
    DocumentRecord,
    EventRecord,
    RunRecord,
    RunStore,
    StepRecord,
    plan_id_of,
)

__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Baseline",
    "CostLedger",
    "DocumentRecord",
    "EventRecord",
    "RunRecord",
    "RunStore",
    "StepRecord",
    "StepRecorder",
    "StoreRun",
    "args_hash",
    "cost_ledger",
    "find_run",
    "is_deterministic",
    "open_store",
    "plan_id_of",
    "plan_tools",
]
