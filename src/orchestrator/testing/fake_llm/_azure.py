"""What Azure OpenAI and Azure AI model inference add to the OpenAI format: deployment paths, the api-version
rules, and their error bodies. Their answers are OpenAI's (see :mod:`._openai`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.testing.fake_llm._replies import Failure

if TYPE_CHECKING:
    from orchestrator.testing.fake_llm._request import RecordedRequest

_JSON_SCHEMA_FROM = "2024-08-01-preview"


def ai_refusal(request: RecordedRequest) -> Failure | None:
    """What the Azure AI model inference API says to a request without an api-version, or to json_schema
    output asked for with an API version that predates it."""
    if request.api != "azure_ai":
        return None
    version = request.query.get("api-version")
    if not version:
        return Failure(400, "Missing required query parameter: api-version")
    response_format = request._body.get("response_format")
    wants_schema = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    if wants_schema and version < _JSON_SCHEMA_FROM:
        return Failure(
            400,
            f"response_format value as json_schema is enabled only for api versions {_JSON_SCHEMA_FROM} and later",
        )
    return None


def openai_error_body(failure: Failure) -> dict[str, Any]:
    """The error in Azure OpenAI's ``{"error": {"code", "message"}}`` shape."""
    status = failure.status
    message = failure.message or (
        "Access denied due to invalid subscription key or wrong API endpoint."
        if status == 401
        else f"fake Azure OpenAI error {status}"
    )
    return {"error": {"code": str(status), "message": message}}


def ai_error_body(failure: Failure) -> dict[str, Any]:
    """The error in Azure AI model inference's ``{"error": {"code", "message", "status"}}`` shape."""
    status = failure.status
    code = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests"}.get(status)
    message = failure.message or ("Invalid API key." if status == 401 else f"fake Azure AI error {status}")
    return {"error": {"code": code or "InternalServerError", "message": message, "status": status}}
