"""The planner's side of plan reuse: look a request up in the library, explain a miss, store new plans.

Which stored plans serve which planner: with ``provider="library"`` every source (the shipped seeds too);
with a model configured only plans a model or a user made, so a configured model still plans requests it
has not planned before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import ConfigurationError
from orchestrator.plan.model import Plan
from orchestrator.planner.library import LibraryMatch, Lookup
from orchestrator.planner.protocol import PlannerCore
from orchestrator.planner.report import Session

CONFIGURE = (
    "set OPENAI_API_KEY or ANTHROPIC_API_KEY (or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY), "
    "or run Ollama and set PLANNER_PROVIDER=ollama"
)
"""What to configure to plan new requests, for messages."""


async def lookup_plan(
    planner: PlannerCore, request: str, context: Mapping[str, Any], session: Session, *, library_mode: bool
) -> LibraryMatch | None:
    """A stored plan for `request`, noted in the session; in library mode a miss is a ConfigurationError."""
    lookup = Lookup()
    library = planner.library
    if library is not None:
        sources = ("seed", "model", "user") if library_mode else ("model", "user")
        try:
            lookup = await library.find(
                request, context, planner.registry, sources=sources, similar=planner.similar_requests
            )
        except ConfigurationError as exc:
            if library_mode:
                raise
            session.note(f"planner: plan library unavailable: {exc}", "library_error")
    match = lookup.match
    if match is not None:
        session.report.source = "library" if match.match == "exact" else "library-similar"
        session.note(
            f"planner: {match.describe()}",
            "library",
            match=match.match,
            similarity=round(match.similarity, 4),
            stored_request=match.request,
        )
        return match
    if library_mode:
        raise await _miss(planner, request, lookup)
    return None


async def _miss(planner: PlannerCore, request: str, lookup: Lookup) -> ConfigurationError:
    lines = [f"no stored plan serves {request!r}, and no planner model is configured."]
    library = planner.library
    if lookup.nearest is not None and library is not None:
        nearest, score = lookup.nearest
        lines.append(f"closest stored request: {nearest!r} (similarity {score:.2f}, needs {library.threshold:.2f})")
    lines.extend(lookup.rejected[:3])
    if library is not None:
        known = await library.requests()
        if known:
            lines.append("known requests: " + "; ".join(repr(k) for k in known[:8]))
    lines.append(f"to plan new requests, {CONFIGURE}")
    return ConfigurationError("\n".join(lines))


async def remember_plan(planner: PlannerCore, request: str, plan: Plan, session: Session) -> None:
    """Store a plan a model made, so the same request costs no call next time."""
    if planner.library is None:
        return
    origin = f"{session.report.provider} {session.report.model or ''}".strip()
    try:
        await planner.library.store(request, plan, origin=origin)
    except ConfigurationError as exc:
        session.note(f"planner: could not store the plan: {exc}", "library_error")
