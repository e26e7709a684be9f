"""Run-wide state: one budget and one set of resources per run (or batch), closed when it ends."""

from __future__ import annotations

import pytest

from orchestrator.budget import Budget
from orchestrator.errors import ConfigurationError
from orchestrator.run_scope import current_budget, current_scope, run_scope
from orchestrator.settings import use_settings

pytestmark = pytest.mark.anyio


class Resource:
    closed = 0

    async def aclose(self) -> None:
        Resource.closed += 1


async def test_an_inner_scope_is_the_outer_one_and_resources_close_with_it() -> None:
    Resource.closed = 0
    assert current_scope() is None and current_budget() is None
    with use_settings(budget_usd=0.5):
        async with run_scope() as outer:
            first = outer.resource("r", Resource)
            async with run_scope() as inner:  # a run inside a batch
                assert inner is outer and inner.resource("r", Resource) is first
            assert Resource.closed == 0  # the inner block does not close the batch's resources
            budget = current_budget()
            assert budget is not None and budget.limit_usd == 0.5  # read from the settings on first use
    assert Resource.closed == 1 and current_scope() is None


def test_a_budget_counts_spend_and_knows_when_it_is_spent() -> None:
    budget = Budget(0.02)
    budget.charge(0.015)
    assert not budget.exhausted and budget.remaining_usd == pytest.approx(0.005)
    budget.charge(0.01)
    assert budget.exhausted and budget.calls == 2 and budget.remaining_usd == 0.0
    assert not Budget().exhausted  # no limit: spend is only counted
    with pytest.raises(ConfigurationError, match="negative"):
        Budget(-1)
