"""Azure AI model inference (the small models hosted in Azure AI Foundry), against the fake server."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigurationError, ModelError
from orchestrator.providers import Message, make_chat_model
from orchestrator.settings import Settings
from orchestrator.testing.fake_llm import FakeLLMServer

KEY = "sk-test-key"  # the key the `fake` fixture of this folder expects

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"category": {"type": "string"}}, "required": ["category"]}


async def test_structured_output_goes_to_the_inference_route_with_the_key_and_api_version(fake: FakeLLMServer) -> None:
    fake.enqueue({"category": "food"})
    settings = Settings(azure_ai_endpoint=fake.base_url + "/models", azure_ai_key=KEY)
    async with make_chat_model("azure_ai", "Phi-4-mini", settings=settings, max_retries=0) as model:  # type: ignore[attr-defined]
        completion = await model.complete([Message.user("Bagel?")], json_schema=SCHEMA, max_tokens=50)
    assert completion.json_value() == {"category": "food"}
    assert (completion.provider, completion.model) == ("azure_ai", "Phi-4-mini")
    request = fake.last_request
    assert (request.api, request.path) == ("azure_ai", "/models/chat/completions")
    assert request.query == {"api-version": "2024-08-01-preview"}
    assert request.headers["api-key"] == KEY and request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "Phi-4-mini" and request.body["max_tokens"] == 50
    assert request.body["response_format"]["json_schema"]["schema"] == SCHEMA


async def test_an_api_version_that_predates_json_schema_is_refused_as_the_service_does(fake: FakeLLMServer) -> None:
    model = make_chat_model(
        "azure_ai",
        "Phi-4-mini",
        settings=Settings(),
        endpoint=fake.base_url,
        api_key=KEY,
        api_version="2024-05-01-preview",
    )
    with pytest.raises(ModelError, match="json_schema is enabled only for api versions 2024-08-01-preview"):
        await model.complete([Message.user("Bagel?")], json_schema=SCHEMA)
    await model.aclose()  # type: ignore[attr-defined]
    assert fake.last_request.path == "/chat/completions"


async def test_a_wrong_key_is_a_configuration_error_naming_the_variable(fake: FakeLLMServer) -> None:
    model = make_chat_model("azure_ai", "Phi-4-mini", settings=Settings(), endpoint=fake.base_url, api_key="wrong")
    with pytest.raises(ConfigurationError, match="AZURE_AI_KEY"):
        await model.complete([Message.user("Bagel?")])
    await model.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        (Settings(azure_ai_key="k"), "set AZURE_AI_ENDPOINT or pass endpoint="),
        (Settings(azure_ai_endpoint="https://x.services.ai.azure.com/models"), "set AZURE_AI_KEY or pass api_key="),
    ],
)
def test_missing_configuration_names_the_variable_and_the_argument(settings: Settings, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        make_chat_model("azure_ai", settings=settings)
