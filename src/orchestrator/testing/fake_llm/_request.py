"""The request the fake received, read the same way whatever its API, and the reply functions that take it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

DEPLOYMENTS_PREFIX = "/openai/deployments/"
"""Azure OpenAI paths: ``/openai/deployments/{name}/chat/completions``."""


def deployment_of(path: str) -> str:
    """The deployment named in an Azure OpenAI path."""
    return path[len(DEPLOYMENTS_PREFIX) :].split("/", 1)[0]


def forced_tool(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The tool a request body forces with `tool_choice` (``tool`` by name, or ``any``), else None."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if isinstance(t, dict) and t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and isinstance(tools[0], dict):
        return tools[0]
    return None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: `headers` have lower-case names, `body` is the parsed JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    api: str
    """``openai``, ``azure_openai``, ``azure_ai``, ``anthropic``, ``ollama`` or ``unknown``."""

    @property
    def model(self) -> str:
        """The requested model (for Azure, the deployment)."""
        if self.api == "azure_openai":
            return deployment_of(self.path)
        return str(self._body.get("model", ""))

    @property
    def stream(self) -> bool:
        """Whether the client asked for a stream (Ollama streams unless told not to)."""
        return bool(self._body.get("stream", self.api == "ollama"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation as ``{"role", "content"}`` dicts, the system prompt first, whatever the API."""
        body = self._body
        out: list[dict[str, Any]] = []
        system = body.get("system")
        if system:
            out.append({"role": "system", "content": _text_of(system)})
        if "prompt" in body:  # Ollama /api/generate
            out.append({"role": "user", "content": str(body["prompt"])})
        out.extend(
            {"role": m.get("role", "user"), "content": _text_of(m.get("content"))} for m in body.get("messages", [])
        )
        return out

    @property
    def last_user_text(self) -> str:
        """The text of the last user message ("" if none)."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The schema the client asked the answer to follow, whatever the API; None for free text."""
        body = self._body
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            schema = response_format.get("json_schema", {}).get("schema")
            return schema if isinstance(schema, dict) else {}
        if isinstance(response_format, dict) and response_format.get("type") == "json_object":
            return {}
        tool = forced_tool(body)
        if tool is not None:
            return dict(tool.get("input_schema", {}))
        fmt = body.get("format")
        if isinstance(fmt, dict):
            return fmt
        return {} if fmt == "json" else None

    @property
    def _body(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


ReplyFunction: TypeAlias = Callable[[RecordedRequest], Any]
"""A function of the request returning a text, a JSON value, a :class:`Reply` or a :class:`Failure`."""


def echo(request: RecordedRequest) -> str:
    """A deterministic "model" that repeats the last user message; handy as `default=`."""
    return f"echo: {request.last_user_text}"


def _text_of(content: Any) -> str:
    """A message's text, whether its content is a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return "" if content is None else str(content)
