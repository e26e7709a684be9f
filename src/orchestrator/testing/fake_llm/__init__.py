"""A local HTTP server that speaks the OpenAI, Azure OpenAI, Anthropic and Ollama chat APIs, for tests.

It is a real server on 127.0.0.1 (a free port, a background thread), so the official SDKs and our
httpx client run exactly as in production: only the base URL changes. One server answers every API,
routing by path:

=====================================================  ===================================================
``POST /v1/chat/completions``                          OpenAI (JSON, or SSE ``data:`` chunks + ``[DONE]``)
``POST /openai/deployments/{name}/chat/completions``   Azure OpenAI (``api-key`` header, ``api-version``)
``POST /chat/completions``, ``/models/chat/completions``  Azure AI model inference (``api-key`` or bearer,
                                                       ``api-version``; json_schema from 2024-08-01-preview)
``POST /v1/messages``                                  Anthropic (JSON, or SSE ``message_start`` ... ``stop``)
``POST /api/chat``, ``POST /api/generate``             Ollama (JSON, or NDJSON lines ending ``done``)
``GET /api/tags``, ``GET /v1/models``                  the models it pretends to have
=====================================================  ===================================================

What it answers is scripted, like llm's ``MockModel``: :meth:`FakeLLMServer.enqueue` queues replies, used
in order by whichever API is called. A reply is a text, a JSON value (returned as the structured output:
the message content, or for Anthropic the input of the forced tool), a :class:`Reply` (text plus tokens,
delay, a stream cut, a token rate), a :class:`Failure` (an HTTP error, with Retry-After), or a function
of the :class:`RecordedRequest` returning any of these, so a fake can act as a deterministic model.

    with FakeLLMServer(tokens_per_s=50) as server:
        server.enqueue(
            Failure(429, retry_after=0.05),         # the client waits 50 ms and retries
            {"category": "food"},                   # then gets this as the structured answer
            Reply("Hel" * 40, cut_after=3),         # a stream that breaks after 3 chunks
            lambda req: req.last_user_text.upper(),  # an "uppercase model"
        )
        model = OpenAIChatModel("gpt-4o", api_key="sk-test", base_url=server.openai_url)
        ...
        assert server.requests[-1].body["response_format"]["type"] == "json_schema"

Usage counts are realistic estimates (about 4 characters per token, plus a few per message) unless a
:class:`Reply` sets them. Streamed text goes out in ~4-character tokens, one event each.

The package, one job a module: ``_server`` (:class:`FakeLLMServer`: queue, recording, lifecycle),
``_handler`` (the HTTP handler), ``_replies`` (:class:`Reply`, :class:`Failure`), ``_request``
(:class:`RecordedRequest`, :func:`echo`), ``_answer`` (a reply rendered for a request), ``_routes`` (path to
API to wire format), and one module per wire format: ``_openai``, ``_anthropic``, ``_ollama``, ``_azure``.
"""

from orchestrator.testing.fake_llm._replies import Failure, Reply
from orchestrator.testing.fake_llm._request import RecordedRequest, ReplyFunction, echo
from orchestrator.testing.fake_llm._server import FakeLLMServer

__all__ = ["FakeLLMServer", "Failure", "RecordedRequest", "Reply", "ReplyFunction", "echo"]
