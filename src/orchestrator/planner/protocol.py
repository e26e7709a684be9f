"""What the planner's parts below :class:`~orchestrator.planner.large.LargePlanner` need from it.

Streaming (``_stream``), plan reuse (``_reuse``) and replanning (``replan``) take a :class:`PlannerCore`
argument: the few attributes and steps they call back into. ``LargePlanner`` implements it, sitting on top;
they never import it, so the package is a tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from orchestrator.executor.events import RunResult
from orchestrator.executor.policy import ConcurrencyLimits, RetryPolicy
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.limits import Limits
from orchestrator.plan.validate import CompiledPlan
from orchestrator.planner.choose import ProviderChoice
from orchestrator.planner.library import PlanLibrary
from orchestrator.planner.report import Session
from orchestrator.providers.base import Completion, DeltaCallback, Message
from orchestrator.registry import ToolRegistry

__all__ = ["PlannerCore"]


class PlannerCore(Protocol):
    """The planner as its streaming, reuse and replanning parts see it."""

    registry: ToolRegistry
    library: PlanLibrary | None
    similar_requests: bool
    max_replans: int
    limits: ConcurrencyLimits | None
    retry: RetryPolicy | None
    plan_limits: Limits  # what a plan the model wrote may hold (orchestrator.plan.limits.ModelPlanLimits)

    async def resolve(self) -> ProviderChoice:
        """The provider and model to plan with (chosen once)."""
        ...

    def system_message(self) -> Message:
        """The system prompt."""
        ...

    def first_messages(self, request: str, context: Mapping[str, Any]) -> list[Message]:
        """The system prompt and the request with its context."""
        ...

    async def call(
        self,
        session: Session,
        messages: list[Message],
        *,
        purpose: str,
        attempt: int,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        """One model call, accounted for in `session`."""
        ...

    def check(
        self, text: str, context: Mapping[str, Any] | None, *, truncated: bool = False
    ) -> tuple[Any, CompiledPlan | None, list[PlanIssue]]:
        """Read and validate a model's answer."""
        ...

    async def generate(
        self,
        session: Session,
        messages: list[Message],
        context: Mapping[str, Any] | None,
        *,
        purpose: str = "plan",
        attempt: int = 0,
        last_output: str = "",
        last_issues: Iterable[PlanIssue] = (),
    ) -> CompiledPlan:
        """The re-ask loop: call, validate, send the issues back."""
        ...

    async def execute(
        self,
        compiled: CompiledPlan,
        context: Mapping[str, Any],
        session: Session,
        completed: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run a validated plan under the planner's limits."""
        ...
