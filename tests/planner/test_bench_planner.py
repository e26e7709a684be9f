"""The planner benchmarks run offline and report what they claim to."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.bench.planner import measure_batch, measure_streaming

pytestmark = pytest.mark.anyio


async def test_the_streaming_benchmark_reports_both_modes_and_streaming_starts_steps_early(tmp_path: Path) -> None:
    figures = await measure_streaming(tokens_per_s=2000, step_delay_s=0.0, home=tmp_path)

    streamed, plain = figures["streaming"], figures["non_streaming"]
    assert streamed["status"] == plain["status"] == "succeeded"
    assert streamed["steps_started_before_plan_complete"] >= 1
    assert plain["first_step_started_s"] >= plain["plan_complete_s"]  # without streaming, nothing runs before
    assert figures["plan_tokens"] > 100


async def test_a_batch_is_planned_with_one_large_model_call_and_costs_less_than_one_call_per_document(
    tmp_path: Path,
) -> None:
    figures = await measure_batch(n_docs=4, home=tmp_path)

    assert figures["large_model_calls_per_batch"] == 1 and figures["docs_succeeded"] == 4
    assert figures["planner_call"]["input_tokens"] > 1000  # the real catalog is in the prompt
    baseline = figures["per_document_baseline"]["gpt-4o"]["usd_per_1000_docs"]
    assert 0 < figures["two_model_usd_per_1000_docs"] < baseline
