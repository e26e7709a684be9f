"""Which back-end is chosen and why; the task prompts, schemas and answer checks."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings
from orchestrator.small_model_worker.choose import choose_backend
from orchestrator.small_model_worker.tasks import (
    InvalidAnswer,
    check_against_schema,
    inline_refs,
    label_messages,
    parse_json_answer,
    read_labels,
    receipt_schema,
)


@pytest.mark.parametrize(
    ("settings", "backend", "reason"),
    [
        (Settings(), "embedded", "no model server configured"),
        (Settings(ollama_api_url="http://gpu-box:11434"), "ollama", "OLLAMA_API_URL=http://gpu-box:11434"),
        (Settings(ollama_api_url="http://localhost:11434/"), "embedded", "no model server configured"),
        (Settings(small_model_base_url="http://vllm:8000/v1"), "openai_compatible", "SMALL_MODEL_BASE_URL is set"),
        (Settings(azure_ai_endpoint="https://x.services.ai.azure.com/models"), "azure", "AZURE_AI_ENDPOINT is set"),
        (
            Settings(small_model_backend="transformers", ollama_api_url="http://x"),
            "transformers",
            "SMALL_MODEL_BACKEND",
        ),
    ],
)
def test_the_backend_comes_from_the_settings_else_the_embedded_model(
    settings: Settings, backend: str, reason: str
) -> None:
    choice = choose_backend(settings)
    assert choice.backend == backend and reason in choice.reason
    assert choice.describe().startswith("small models: ")
    assert choice.model == ("all-MiniLM-L6-v2" if backend == "embedded" else "phi3")


def test_an_explicit_backend_wins_and_names_are_forgiving() -> None:
    assert choose_backend(Settings(small_model_backend="ollama"), "Azure-AI").backend == "azure"
    with pytest.raises(ConfigurationError, match="did you mean 'transformers'"):
        choose_backend(Settings(), "transformer")


def test_label_answers_are_read_per_item_and_confidences_clipped() -> None:
    data = {"answers": [{"label": "food", "confidence": 7}, {"label": "starship", "confidence": 0.9}]}
    assert read_labels(data, ["food", "fuel"], 2) == [("food", 1.0), None]
    with pytest.raises(InvalidAnswer, match="expected 3 answers"):
        read_labels(data, ["food", "fuel"], 3)
    with pytest.raises(InvalidAnswer, match="no answer names one of the allowed labels"):
        read_labels({"answers": [{"label": "x", "confidence": 1}]}, ["food"], 1)


def test_the_label_prompt_carries_the_items_the_labels_and_the_schema() -> None:
    messages, schema = label_messages(["latte", "diesel"], ["beverage", "fuel"], {"fuel": "petrol, diesel"})
    assert messages[0].role == "system" and messages[1].content.startswith("INPUT:\n")
    assert '"items": ["latte", "diesel"]' in messages[1].content and "SCHEMA:" in messages[1].content
    assert '"fuel": "petrol, diesel"' in messages[1].content
    assert schema["properties"]["answers"]["minItems"] == schema["properties"]["answers"]["maxItems"] == 2


def test_answers_are_read_through_code_fences_and_prose() -> None:
    assert parse_json_answer('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_answer('Here you go: {"a": [1, 2]} hope that helps') == {"a": [1, 2]}
    with pytest.raises(InvalidAnswer):
        parse_json_answer("no json here")


def test_a_users_json_schema_is_checked_with_paths_in_the_errors() -> None:
    schema = {
        "type": "object",
        "properties": {"total": {"type": "number"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
        "required": ["total"],
        "additionalProperties": False,
    }
    check_against_schema({"total": 3, "tags": ["a"]}, schema)
    for bad, message in [
        ({"tags": []}, "missing total"),
        ({"total": "3"}, r"answer\.total: expected number"),
        ({"total": 3, "tags": ["c"]}, r"answer\.tags\[0\]"),
        ({"total": 3, "extra": 1}, "unexpected extra"),
        ({"total": True}, "expected number"),
    ]:
        with pytest.raises(InvalidAnswer, match=message):
            check_against_schema(bad, schema)


def test_the_receipt_schema_has_no_references() -> None:
    schema = receipt_schema()
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["properties"]["items"]["items"]["properties"]["amount"]["type"] == "number"
    assert inline_refs({"$defs": {"X": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/X"}}}) == {
        "properties": {"x": {"type": "string"}}
    }
