"""Limits on plans: sizes for any plan, and tighter ones for plans a model wrote.

A plan file is written (or at least read) by a person; a plan from the large model is model output, so
it is treated as hostile: few steps, a bounded ``for_each`` fan-out, few model-using steps and model
calls. The planner validates what the model wrote with :meth:`ModelPlanLimits.from_settings`; the
compiled plan carries its limits, so the executor holds the run-time part (fan-out of lists known only
then, model calls) to them too. Every refusal names the limit and the setting that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.settings import Settings

MODEL_KINDS = frozenset({"small_model", "large_model"})
"""Tool kinds whose calls are model calls (what the model limits count)."""


@dataclass(frozen=True)
class Limits:
    """Size limits that keep a hostile or broken plan from crashing or hanging the validator.

    The ``max_for_each*`` and ``max_model*`` limits are None (unbounded) for plan files.
    """

    max_bytes: int = 20_000_000
    max_steps: int = 100_000
    max_depth: int = 32
    max_string: int = 100_000
    max_for_each: int | None = None
    max_for_each_total: int | None = None
    max_model_steps: int | None = None
    max_model_calls: int | None = None

    def refusal(self, what: str, limit: int, name: str) -> str:
        """`what` went over the limit `name`: one sentence naming the limit (and the setting, if any)."""
        return f"{what}; the limit is {limit:,}"


DEFAULT_LIMITS = Limits()


MODEL_PLAN_SETTINGS = {
    "max_steps": "MODEL_PLAN_MAX_STEPS",
    "max_for_each": "MODEL_PLAN_MAX_FOR_EACH",
    "max_for_each_total": "MODEL_PLAN_MAX_FOR_EACH_TOTAL",
    "max_model_steps": "MODEL_PLAN_MAX_MODEL_STEPS",
    "max_model_calls": "MODEL_PLAN_MAX_MODEL_CALLS",
}
"""The setting behind each model-plan limit."""


@dataclass(frozen=True)
class ModelPlanLimits(Limits):
    """The limits for a plan a model wrote. Each one is a setting (see :meth:`from_settings`)."""

    max_steps: int = 200
    max_for_each: int | None = 1_000
    max_for_each_total: int | None = 10_000
    max_model_steps: int | None = 20
    max_model_calls: int | None = 500

    def refusal(self, what: str, limit: int, name: str) -> str:
        setting = MODEL_PLAN_SETTINGS.get(name)
        text = f"{what}; a model-written plan may have at most {limit:,}"
        return f"{text} (set {setting} to raise it)" if setting else text

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ModelPlanLimits:
        """The limits in force: from `settings`, else the current settings."""
        if settings is None:
            from orchestrator.settings import current_settings

            settings = current_settings()
        return cls(
            max_steps=settings.model_plan_max_steps,
            max_for_each=settings.model_plan_max_for_each,
            max_for_each_total=settings.model_plan_max_for_each_total,
            max_model_steps=settings.model_plan_max_model_steps,
            max_model_calls=settings.model_plan_max_model_calls,
        )
