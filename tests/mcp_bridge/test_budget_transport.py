"""BUDGET_USD with WORKERS_TRANSPORT=mcp: the run's budget is the one authority, in process or out of process.

Each call to our workers' server carries what is left of the run's budget; the server runs the tool under
that and says what it spent, which is charged to the run's budget here. So the paid calls, the items the
budget stopped, and the run's spend come out the same both ways.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.budget import Budget
from orchestrator.executor import execute_plan
from orchestrator.run_scope import run_scope
from orchestrator.settings import Settings, use_settings
from orchestrator.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply
from orchestrator.testing.fake_small_model import SmallModelResponder
from orchestrator.toolbox import default_registry

pytestmark = pytest.mark.anyio

KEY = "sk-budget-test"
UNSURE = ["Zorblax 3000", "Quuxinator", "Flimflam Deluxe"]  # no keyword rule is sure of these
PAID = "openai_compatible:gpt-4o-mini"  # priced: $0.15 per million input tokens


def costly(request: RecordedRequest) -> Reply:
    """Answers like the fake small model, each call reporting 100k input tokens ($0.015 on gpt-4o-mini)."""
    return Reply(data=SmallModelResponder().answer(request), input_tokens=100_000, output_tokens=10)


def plan(*names: str) -> dict[str, Any]:
    """One categorize step per name, each after the one before."""
    steps: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        items = [{"name": name, "amount": 1.0}]
        step: dict[str, Any] = {"id": f"s{i}", "tool": "expense_categorizer", "args": {"items": items}}
        if i:
            step["depends_on"] = [f"s{i - 1}"]
        steps.append(step)
    return {"goal": "categorize", "steps": steps}


def paid_settings(base: Settings, server: FakeLLMServer, home: Path, transport: str) -> Settings:
    home.mkdir(parents=True, exist_ok=True)  # a fresh home each time: no cached answer spares a paid call
    return base.model_copy(
        update={
            "orchestrator_home": home,
            "use_small_model": True,
            "small_model_backend": "openai_compatible",
            "small_model_base_url": server.openai_url,
            "small_model_api_key": KEY,
            "worker_model": "gpt-4o-mini",
            "small_model_cascade": ("keyword", "llm"),
            "small_model_max_retries": 0,
            "budget_usd": 0.01,
            "workers_transport": transport,
        }
    )


async def run(settings: Settings, names: list[str], budget: Budget | None = None) -> tuple[Any, Budget]:
    with use_settings(settings):
        registry = default_registry()
        async with run_scope(budget) as scope:
            result = await execute_plan(plan(*names), registry=registry)
            return result, scope.budget


async def test_budget_usd_stops_the_same_calls_in_process_and_out_of_process(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    with FakeLLMServer(default=costly, api_key=KEY) as server:
        seen = {}
        for transport in ("local", "mcp"):
            before = len(server.requests)
            settings = paid_settings(isolated_settings, server, tmp_path / transport, transport)
            result, budget = await run(settings, UNSURE)
            seen[transport] = (
                {sid: step.counts for sid, step in result.steps.items()},
                round(result.usage.cost_usd, 6),
                round(budget.spent_usd, 6),
                budget.calls,
                budget.stopped,
                len(server.requests) - before,
            )
    local = seen["local"]
    assert local[0]["s1"] == {f"budget_stopped:{PAID}": 1, "tier:keyword": 1}  # $0.015 spent by s0: over $0.01
    assert local[2] == pytest.approx(0.015, rel=0.01) and local[4] == 2 and local[5] == 1
    assert seen["mcp"] == local


async def test_out_of_process_workers_spend_only_what_the_run_has_left(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    with FakeLLMServer(default=costly, api_key=KEY) as server:
        settings = paid_settings(isolated_settings, server, tmp_path / "spent", "mcp")
        spent = Budget(0.01)
        spent.charge(0.01)  # e.g. by the steps that ran in this process
        result, budget = await run(settings, UNSURE[:1], spent)
        assert len(server.requests) == 0  # the server had its own fresh $0.01, but the run's is gone
    assert result.steps["s0"].counts == {f"budget_stopped:{PAID}": 1, "tier:keyword": 1}
    assert budget is spent and budget.stopped == 1 and budget.spent_usd == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [{"limit_usd": -1}, {"limit_usd": "lots"}, {"limit_usd": True}, {}, [0.5]])
async def test_a_malformed_budget_in_the_request_meta_is_refused_naming_it(bad: Any) -> None:
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    from orchestrator.mcp_bridge.server import build_server

    async with Client(build_server(default_registry(mcp=False))) as client:
        with pytest.raises(MCPError, match="orchestrator/budget"):
            await client.call_tool("calculate_tax", {"amount": 1, "rate": 0.1}, meta={"orchestrator/budget": bad})
        done = await client.call_tool(
            "calculate_tax", {"amount": 1, "rate": 0.1}, meta={"orchestrator/budget": {"limit_usd": 0.5}}
        )
    assert done.structured_content is not None and done.structured_content["gross"] == 1.1
    assert done.meta is not None and done.meta["orchestrator/budget"] == {"spent_usd": 0.0, "calls": 0, "stopped": 0}
