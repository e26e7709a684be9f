"""While a plan streams, only read-only steps start: an answer that proves invalid has run nothing that writes.

Each shape goes through a provider's real SDK or client against the fake server speaking its API. The
plan's second step uses `save`, a tool that is not read-only; its JSON object is complete in every invalid
answer, so a gate that let it start early would run it before the answer was rejected.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.executor import Event, RunNote, StepStarted
from orchestrator.planner import LargePlanner
from orchestrator.testing.fake_llm import FakeLLMServer, Reply

from .conftest import CONTEXT

pytestmark = pytest.mark.anyio

MakePlanner = Callable[..., LargePlanner]

GATED: dict[str, Any] = {
    "goal": "double n, keep it, add three",
    "inputs": {"n": {"type": "integer"}},
    "steps": [
        {"id": "twice", "tool": "double", "args": {"x": "input:n"}},
        {"id": "keep", "tool": "save", "args": {"value": "step:twice"}},
        {"id": "total", "tool": "add", "args": {"a": "step:twice", "b": 3}},
    ],
    "output": "step:total",
}


def _text(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=1)


def _truncated() -> Reply:
    text = _text(GATED)
    cut = text.index('"id": "total"')  # `twice` and `keep` are whole; the answer stops at the length limit
    return Reply(text[:cut], finish_reason="length")


def _commented() -> Reply:
    text = _text(GATED).replace('  {\n   "id": "total"', '  // the last step adds three\n  {\n   "id": "total"')
    assert "//" in text
    return Reply(text)


def _smart_quotes() -> Reply:
    text = _text(GATED)
    start = text.index('"id": "total"')
    end = text.index("}", text.index('"b": 3'))
    tail = text[start:end].replace('"', "\u201c", 1)  # a curly quote where a straight one belongs
    return Reply(text[:start] + tail + text[end:])


def _duplicate_ids() -> Reply:
    bad = json.loads(json.dumps(GATED))
    bad["steps"][2]["id"] = "twice"  # two steps named twice
    bad["output"] = "step:twice"
    return Reply(_text(bad))


def _unknown_tool() -> Reply:
    bad = json.loads(json.dumps(GATED))
    bad["steps"][2]["tool"] = "addd"
    return Reply(_text(bad))


SHAPES = {
    "truncated": _truncated,
    "commented": _commented,
    "smart-quotes": _smart_quotes,
    "duplicate-ids": _duplicate_ids,
    "unknown-tool": _unknown_tool,
}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_an_invalid_streamed_answer_has_run_nothing_that_is_not_read_only(
    shape: str,
    provider: str,
    fake: FakeLLMServer,
    planner_for: MakePlanner,
    calls: Counter[str],
    saved: list[tuple[str, float]],
) -> None:
    fake.enqueue(SHAPES[shape](), GATED)
    events: list[Event] = []
    saved_when_rejected: list[int] = []

    def watch(event: Event) -> None:
        events.append(event)
        if isinstance(event, RunNote) and event.data["kind"] == "rejected":
            saved_when_rejected.append(calls["save"])

    done = await planner_for(provider).run("double n, keep it, add three", CONTEXT, on_event=watch)

    assert saved_when_rejected == [0], "a step that writes ran before the answer was found invalid"
    assert done.result.ok and done.result.output == 13
    assert saved == [("result", 10.0)]  # exactly once, from the repaired (valid) plan
    assert len(fake.requests) == 2 and fake.requests[0].stream
    planned = [e for e in events if isinstance(e, RunNote) and e.data["kind"] == "step_planned"]
    assert any(e.data["step_id"] == "keep" and e.data.get("admission") == "held" for e in planned)
    # What ran early is reported: only the read-only steps (`twice`, and `total` when it was whole) could have.
    assert set(done.planning.streamed_steps) <= {"twice", "total"}
    assert all(info["tool"] != "save" for info in done.planning.streamed_steps.values())
    early = next(e for e in events if isinstance(e, RunNote) and e.data["kind"] == "streamed_run")
    assert "keep" in early.data["held"] and "keep" not in early.data["ran"]
    starts = [i for i, e in enumerate(events) if isinstance(e, StepStarted) and e.step_id == "keep"]
    rejected = next(i for i, e in enumerate(events) if isinstance(e, RunNote) and e.data["kind"] == "rejected")
    assert len(starts) == 1 and starts[0] > rejected


async def test_a_read_only_step_still_starts_early_and_a_writing_step_waits_for_the_whole_plan(
    planner_for: MakePlanner, fake: FakeLLMServer, calls: Counter[str]
) -> None:
    fake.enqueue(GATED)
    events: list[Event] = []

    done = await planner_for("openai").run("double n, keep it, add three", CONTEXT, on_event=events.append)

    assert done.result.ok and calls["save"] == 1
    complete = next(e for e in events if isinstance(e, RunNote) and e.data["kind"] == "plan_complete")
    assert "keep" not in complete.data["started_before_complete"]
    keep_start = next(i for i, e in enumerate(events) if isinstance(e, StepStarted) and e.step_id == "keep")
    assert keep_start > events.index(complete)
    assert done.planning.streamed_steps == {}  # the answer was valid: nothing to report
