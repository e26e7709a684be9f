"""The plan: format (model), references (refs), graph, validation, and loading with source positions.

Layer *validate*: below the executor and the planner (both validate), above the tool interface
(:mod:`orchestrator.registry`, whose specs the arguments are checked against). Knows no tools, workers or models.
"""

from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.limits import Limits, ModelPlanLimits
from orchestrator.plan.model import InputSpec, Plan, Step, plan_json_schema
from orchestrator.plan.validate import CompiledPlan, CompiledStep, check_plan, load_plan, validate_plan

__all__ = [
    "CompiledPlan",
    "CompiledStep",
    "InputSpec",
    "Limits",
    "ModelPlanLimits",
    "Plan",
    "PlanIssue",
    "Step",
    "check_plan",
    "load_plan",
    "plan_json_schema",
    "validate_plan",
]
