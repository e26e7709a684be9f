"""The tolerant JSON reader and the streaming step extractor."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.planner.reader import JSONReadError, StepExtractor, read_json, read_plan_json, strip_trailing_commas

from .conftest import PLAN, plan_text


@pytest.mark.parametrize(
    "text",
    [
        plan_text(),
        f"```json\n{plan_text()}\n```",
        f"```\n{plan_text()}```",
        f"Sure! Here is the plan:\n{plan_text()}\nLet me know if you need changes {{or not}}.",
        plan_text().replace('"step:total"\n}', '"step:total",\n}'),
        json.dumps({"plan": PLAN}),
    ],
    ids=["plain", "fenced", "bare-fence", "prose", "trailing-comma", "wrapped"],
)
def test_a_plan_is_read_however_the_model_wrapped_it(text: str) -> None:
    assert read_plan_json(text) == PLAN


def test_trailing_commas_inside_strings_are_kept() -> None:
    assert strip_trailing_commas('{"a": ",]", "b": [1, 2, ],}') == '{"a": ",]", "b": [1, 2 ]}'


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Sure, here is what I would do.", "no JSON object"),
        ('{"steps": [{"id": "a"', "not complete"),
        ('{"steps": [{"id": a}]}', "not valid JSON"),
    ],
)
def test_what_cannot_be_read_is_an_error_saying_why(text: str, why: str) -> None:
    with pytest.raises(JSONReadError, match=why):
        read_json(text)


def test_each_step_is_extracted_the_moment_its_closing_brace_arrives() -> None:
    text = plan_text()
    extractor = StepExtractor()
    seen: list[tuple[int, str]] = []
    for index, ch in enumerate(text):
        seen.extend((index, step["id"]) for step in extractor.feed(ch))
    args_close = text.index("}", text.index('"id": "twice"'))
    step_close = text.index("}", args_close + 1)
    assert seen[0] == (step_close, "twice")
    assert [sid for _, sid in seen] == ["twice", "six", "total"]


def test_only_the_top_level_steps_list_is_extracted() -> None:
    plan = {
        "goal": "{not a step}",
        "inputs": {"steps": {"type": "array", "default": [{"id": "fake"}]}},
        "steps": [{"id": "a", "tool": "t", "args": {"steps": [{"id": "nested"}], "s": '}"{'}}],
        "output": {"steps": [{"id": "no"}]},
    }
    text = "Here you go ```json\n" + json.dumps(plan) + '\n``` {"steps": [{"id": "after"}]}'
    extractor = StepExtractor()
    found = [step for ch in text for step in extractor.feed(ch)]
    assert found == plan["steps"]


def test_a_step_with_trailing_commas_is_still_extracted_and_a_broken_one_is_set_aside() -> None:
    extractor = StepExtractor()
    found = extractor.feed('{"steps": [{"id": "a", "args": {"x": 1,},}, {"id": b}, {"id": "c"}]}')
    assert found == [{"id": "a", "args": {"x": 1}}, {"id": "c"}]
    assert extractor.broken == ['{"id": b}']


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_extraction_does_not_depend_on_how_the_stream_is_cut(cuts: list[int]) -> None:
    text = f"```json\n{plan_text()}\n```"
    pieces, start = [], 0
    for size in cuts:
        pieces.append(text[start : start + size])
        start += size
    pieces.append(text[start:])
    extractor = StepExtractor()
    found = [step for piece in pieces for step in extractor.feed(piece)]
    assert found == PLAN["steps"]
