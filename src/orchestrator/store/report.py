"""The HTML run report: one self-contained page (no network) drawn with Apache ECharts, laid out with dagre.

The page shows the plan as a graph (dagre's layered layout, drawn as an ECharts graph), a Gantt timeline of
step execution (an ECharts custom series: one row per step for a single run, one row per document for a
batch, plus the number of steps running at each moment, so parallelism is visible at any size), each step's
status, error, worker modes, attempts and usage, and the cost breakdown. Both libraries are vendored in
``assets/`` (with their licenses) and inlined; the run's data is embedded as JSON.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from orchestrator.store._ledger import cost_ledger
from orchestrator.store._sqlite import RunStore

MAX_ROWS = 300
"""Documents drawn as their own timeline rows; the aggregated running-steps chart covers every document."""


def _asset(name: str) -> str:
    return resources.files("orchestrator.store").joinpath("assets", name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    # Inside <script>, "</script" or "<!--" in a string would end or confuse the element: "<" can only
    # stand inside JSON strings, where \u003c means the same.
    return json.dumps(data, ensure_ascii=False, default=str).replace("<", "\\u003c")


def _plan_graph(plan: dict[str, Any]) -> dict[str, Any]:
    from orchestrator.plan.refs import compile_value, iter_refs

    steps = []
    for step in plan.get("steps", []):
        deps = set(step.get("depends_on", []))
        for field in ("args", "for_each"):
            try:
                deps |= {ref.name for ref, _ in iter_refs(compile_value(step.get(field))) if ref.kind == "step"}
            except Exception:  # a report is drawn from what was recorded, even if it no longer validates
                pass
        steps.append({"id": step.get("id"), "tool": step.get("tool"), "deps": sorted(d for d in deps if d)})
    return {"goal": plan.get("goal", ""), "steps": steps}


def report_data(store: RunStore, run_id: str) -> dict[str, Any]:
    """Everything the page draws, as JSON data."""
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(run_id)
    plan = store.load_plan(run.plan_id) if run.plan_id else {"steps": []}
    steps = store.steps(run_id)
    docs = store.documents(run_id)
    starts = [s.started_at for s in steps if s.started_at is not None]
    t0 = min(starts) if starts else run.started_at
    shown = {d.doc for d in docs[:MAX_ROWS]}
    ledger = cost_ledger(store, run_id)
    return {
        "run": {
            "id": run.id,
            "kind": run.kind,
            "request": run.request,
            "status": run.status,
            "started_at": run.started_at,
            "duration_s": run.duration_s,
            "sessions": run.sessions,
            "error": run.error,
            "documents": len(docs),
        },
        "plan": _plan_graph(plan),
        "steps": [
            {
                "doc": s.doc,
                "step": s.step_id,
                "tool": s.tool,
                "kind": s.kind,
                "status": s.status,
                "start": None if s.started_at is None else s.started_at - t0,
                "end": None if s.finished_at is None else s.finished_at - t0,
                "attempts": s.attempts,
                "modes": list(s.modes),
                "error": s.error,
                "calls": s.calls,
                "tokens": s.input_tokens + s.output_tokens,
                "cost": s.cost_usd,
                "session": s.session,
                "row": s.doc in shown,
            }
            for s in steps
        ],
        "documents": [{"doc": d.doc, "status": d.status} for d in docs],
        "ledger": ledger.model_dump(mode="json"),
        "max_rows": MAX_ROWS,
    }


def render_report(store: RunStore, run_id: str) -> str:
    """The report page of a recorded run, as one self-contained HTML document."""
    data = report_data(store, run_id)
    parts = {
        "TITLE": html.escape(f"orchestrator run {run_id}"),
        "ECHARTS": _asset("echarts.min.js"),
        "DAGRE": _asset("dagre.min.js"),
        "DATA": _json_for_script(data),
        "APP": _asset("report.js"),
    }
    # One pass, so that nothing inlined is itself searched for placeholders.
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _asset("report.html"))


__all__ = ["MAX_ROWS", "render_report", "report_data"]
