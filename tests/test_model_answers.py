"""Reading model answers: reasoning blocks, several objects, refusals, loose labels, string confidences."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.model_answers import (
    AmbiguousLabel,
    json_objects,
    match_label,
    read_confidence,
    refusal,
    strip_reasoning,
)
from orchestrator.planner.reader import JSONReadError, RefusalAnswer, StepExtractor, read_json

PLAN = {"steps": [{"id": "a", "tool": "t", "args": {"x": "{not a brace}"}}]}
LABELS = ["food", "beverage", "office_supplies", "fast_food"]


@pytest.mark.parametrize("tag", ["think", "thinking", "reasoning", "THINK"])
def test_a_reasoning_block_with_braces_is_skipped_before_the_json(tag: str) -> None:
    text = f'<{tag}>The user wants {{"steps": []}}? No: {{draft}}. Let me write it.</{tag}>\n{json.dumps(PLAN)}'
    assert read_json(text) == PLAN


def test_an_answer_cut_while_still_reasoning_holds_no_json() -> None:
    with pytest.raises(JSONReadError, match="only reasoning"):
        read_json('<think>I will answer {"steps": [')


def test_a_closing_tag_without_its_opening_ends_the_reasoning() -> None:
    assert strip_reasoning('so {"x": 1} maybe</think>{"y": 2}') == '{"y": 2}'


def test_two_top_level_objects_are_refused_and_neither_is_taken() -> None:
    text = f"Draft:\n{json.dumps({'steps': []})}\nFinal:\n```json\n{json.dumps(PLAN)}\n```"
    with pytest.raises(JSONReadError, match="2 separate JSON objects; none was taken"):
        read_json(text)


def test_braces_in_prose_are_not_objects() -> None:
    assert json_objects("use {x} then " + json.dumps(PLAN) + " {done}") == ([PLAN], False)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that request.",
        "I cannot assist with processing these documents.",
        "<think>this looks like personal data</think>I must decline this request.",
        "I am afraid I am unable to do that.",
    ],
)
def test_a_refusal_is_recognised(text: str) -> None:
    assert refusal(text) is not None
    with pytest.raises(RefusalAnswer, match="declined"):
        read_json(text)


@pytest.mark.parametrize("text", ["Sure, here is the plan.", json.dumps(PLAN), "I can help: " + json.dumps(PLAN)])
def test_an_answer_is_not_mistaken_for_a_refusal(text: str) -> None:
    assert refusal(text) is None


def test_the_step_extractor_skips_braces_inside_a_think_block_even_when_it_arrives_in_pieces() -> None:
    text = '<think>maybe {"steps": [{"id": "bad", "tool": "x"}]}</think>' + json.dumps(PLAN)
    extractor = StepExtractor()
    found: list[dict[str, Any]] = []
    for i in range(0, len(text), 3):
        found.extend(extractor.feed(text[i : i + 3]))
    assert found == PLAN["steps"]


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("food", "food"),
        ("Food", "food"),
        ("  FOOD. ", "food"),
        ('"beverage"', "beverage"),
        ("Office Supplies", "office_supplies"),
        ("office-supplies!", "office_supplies"),
        ("The category is beverage.", "beverage"),
        ("this is fast food", "fast_food"),  # the longer label wins over the one inside it
        ("spaceship", None),
        (3, None),
    ],
)
def test_labels_are_normalised(answer: object, label: str | None) -> None:
    assert match_label(answer, LABELS) == label


def test_two_different_labels_in_one_answer_are_ambiguous() -> None:
    with pytest.raises(AmbiguousLabel, match="'food' and 'beverage'"):
        match_label("food or beverage", LABELS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.9, 0.9),
        ("0.9", 0.9),
        (" 0.75 ", 0.75),
        ("90%", 0.9),
        (1.4, 1.0),
        ("high", None),
        ("", None),
        (None, None),
        (True, None),
        ("nan", None),
        ("85", None),
        ([0.9], None),
    ],
)
def test_a_confidence_is_parsed_or_left_empty(value: object, expected: float | None) -> None:
    assert read_confidence(value) == expected


@given(st.text(max_size=200))
def test_reading_any_text_either_returns_json_or_says_why(text: str) -> None:
    try:
        read_json(text)
    except JSONReadError as exc:
        assert str(exc)


@given(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=12), st.integers()))
def test_a_confidence_is_never_outside_zero_and_one(value: object) -> None:
    confidence = read_confidence(value)
    assert confidence is None or 0.0 <= confidence <= 1.0


@given(st.sampled_from(LABELS), st.sampled_from(["", " ", ".", '"', "*", "!"]), st.booleans())
def test_a_known_label_with_case_and_punctuation_changed_is_still_that_label(
    label: str, edge: str, upper: bool
) -> None:
    written = edge + (label.upper() if upper else label) + edge
    assert match_label(written, LABELS) == label


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), min_size=1, max_size=4))
def test_every_object_written_in_prose_is_found(objects: list[dict[str, int]]) -> None:
    text = " and then ".join(json.dumps(o) for o in objects)
    assert json_objects(text) == (objects, False)


def test_a_reasoning_tag_inside_a_json_string_is_kept() -> None:
    plan = {"steps": [{"id": "a", "tool": "t", "args": {"text": "keep <think>this</think> as text"}}]}
    assert read_json(json.dumps(plan)) == plan
