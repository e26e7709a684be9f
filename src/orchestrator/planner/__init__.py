"""The large planner: natural language in, a validated plan out; streamed execution, repair, replanning, reuse.

    from orchestrator.planner import LargePlanner

    planner = LargePlanner(provider="openai")  # or "anthropic", "ollama", "openai_compatible",
                                               # "azure_openai", "library", or None to choose
    plan = await planner.generate_plan("Process this receipt and calculate tax", context={"image_path": "r.png"})
    done = await planner.run("Process this receipt and calculate tax", {"image_path": "r.png"}, on_event=print)

See :mod:`orchestrator.planner.large` for the guarantees, :mod:`~orchestrator.planner.choose` for how the
provider is chosen, :mod:`~orchestrator.planner.library` for plan reuse and
:mod:`~orchestrator.planner.report` for how cost is recorded.

The top of the runtime layers (*plan*): it validates and executes what the model writes. Inside, a tree:
:class:`LargePlanner` (``large``) on top; streaming (``_stream``), reuse (``_reuse``) and replanning
(``replan``) below it, calling back only through :class:`~orchestrator.planner.protocol.PlannerCore`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.plan.model import Plan
from orchestrator.planner.choose import PLANNER_PROVIDERS, ProviderChoice, choose_provider
from orchestrator.planner.large import LargePlanner
from orchestrator.planner.library import LibraryMatch, PlanLibrary, normalise_request
from orchestrator.planner.reader import JSONReadError, StepExtractor, read_json, read_plan_json
from orchestrator.planner.replan import reusable_outputs
from orchestrator.planner.report import PlannedRun, PlannerCall, PlanningReport
from orchestrator.registry import ToolRegistry


async def plan_once(
    request: str,
    context: Mapping[str, Any] | None = None,
    *,
    registry: ToolRegistry | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> Plan:
    """One validated plan for a whole batch: at most one planner call (none when the library has it)."""
    async with LargePlanner(provider, model, registry=registry) as planner:
        return await planner.generate_plan(request, context)


__all__ = [
    "PLANNER_PROVIDERS",
    "JSONReadError",
    "LargePlanner",
    "LibraryMatch",
    "PlanLibrary",
    "PlannedRun",
    "PlannerCall",
    "PlanningReport",
    "ProviderChoice",
    "StepExtractor",
    "choose_provider",
    "normalise_request",
    "plan_once",
    "read_json",
    "read_plan_json",
    "reusable_outputs",
]
