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
"""

from __future__ import annotations

import json
import logging
import math
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

_AZURE_PREFIX = "/openai/deployments/"


@dataclass(frozen=True)
class Reply:
    """A scripted answer.

    Args:
        text: the answer's text (for a structured call, the JSON document as text).
        data: a JSON value to return as the structured output (used when `text` is None).
        input_tokens: reported prompt tokens (default: an estimate from the request).
        output_tokens: reported completion tokens (default: the number of ~4-character tokens sent).
        finish_reason: the stop reason to report (default: the API's normal one).
        delay_s: wait this long before sending anything (to trigger client timeouts).
        cut_after: close the connection after this many content chunks of a stream (or, for a
            non-streamed answer, halfway through the body), without ending it properly.
        cut_cleanly: with `cut_after`, end the HTTP body properly instead, so only the API-level end of
            the stream (``[DONE]``, ``message_stop``, ``done``) is missing.
        tokens_per_s: this reply's generation speed (default: the server's).
    """

    text: str | None = None
    data: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    delay_s: float = 0.0
    cut_after: int | None = None
    cut_cleanly: bool = False
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class Failure:
    """A scripted HTTP error, in the API's own error format.

    Args:
        status: the HTTP status (429, 500, 529, 401...).
        message: the error message (default: a realistic one for the status).
        retry_after: seconds to send as ``Retry-After`` (floats are fine for the SDKs).
        delay_s: wait this long before answering.
    """

    status: int = 500
    message: str | None = None
    retry_after: float | None = None
    delay_s: float = 0.0


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
            return self.path[len(_AZURE_PREFIX) :].split("/", 1)[0]
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
        tool = _forced_tool(body)
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


class FakeLLMServer:
    """The chat APIs on ``127.0.0.1``; use as a context manager, or call :meth:`start` and :meth:`close`.

    Args:
        default: what to answer when the queue is empty (a reply or a function of the request); with
            none, an empty queue answers HTTP 400 saying so (400, so no client retries it).
        api_key: when set, OpenAI (``Authorization: Bearer``), Azure OpenAI (``api-key``), Azure AI
            (``api-key`` or a bearer token) and Anthropic (``x-api-key`` or a bearer token) requests carrying
            another key get 401.
        models: the Ollama models it has: listed by ``/api/tags``; other names get 404 like a real
            server. None accepts any name.
        tokens_per_s: generation speed; streams pace their tokens and plain answers wait the whole
            generation time. None answers at once.
        chunk_chars: characters per streamed token.
        model_aliases: the model id to report for a requested name or Azure deployment, e.g.
            ``{"prod-gpt4o": "gpt-4o-2024-08-06"}`` (default: report what was asked for).
        port: the port to listen on (0: a free one).
    """

    def __init__(
        self,
        *,
        default: Any = None,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        tokens_per_s: float | None = None,
        chunk_chars: int = 4,
        model_aliases: Mapping[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.default = default
        self.port = port
        self.model_aliases = dict(model_aliases or {})
        self.api_key = api_key
        self.models = list(models) if models is not None else None
        self.tokens_per_s = tokens_per_s
        self.chunk_chars = max(1, chunk_chars)
        self._queue: deque[Any] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -----------------------------------------------------------------------------

    def enqueue(self, *replies: Any) -> FakeLLMServer:
        """Queue replies, answered in order (a str, a JSON value, Reply, Failure, or a function)."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """How many queued replies are still unused."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (IndexError if none)."""
        with self._lock:
            return self._requests[-1]

    # -- addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: Ollama's `base_url`, Anthropic's `base_url`, Azure's endpoint."""
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; use it as a context manager or call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI SDK's `base_url` (``.../v1``)."""
        return self.base_url + "/v1"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind the port (a free one by default) on 127.0.0.1 and serve in a background thread.

        Raises:
            OSError: The port is taken.
        """
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", self.port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, break open connections and delays, and join every thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- used by the handler -------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self, request: RecordedRequest) -> Reply | Failure:
        with self._lock:
            item = self._queue.popleft() if self._queue else self.default
        if item is None:
            return Failure(400, "FakeLLMServer: no scripted reply left (enqueue() one, or pass default=)")
        if callable(item):
            item = item(request)
        if isinstance(item, Reply | Failure):
            return item
        if isinstance(item, str):
            return Reply(text=item)
        json.dumps(item)  # a TypeError here becomes a 500 that names the bad reply
        return Reply(data=item)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins them
    fake: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (or close() breaking a kept-alive connection) is routine; anything else is a bug.
        level = logging.DEBUG if isinstance(sys.exc_info()[1], OSError) else logging.ERROR
        logger.log(level, "fake LLM server: error while handling %s", client_address, exc_info=True)


@dataclass
class _Answer:
    """One reply, rendered for one request."""

    request: RecordedRequest
    reply: Reply
    text: str
    tool_input: dict[str, Any] | None
    pieces: list[str]
    input_tokens: int
    output_tokens: int
    rate: float | None
    model: str
    ids: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms per reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fake = self.server.fake
        with fake._lock:
            fake._connections.add(self.connection)
        if fake._stopping.is_set():  # accepted while closing: close() may not have seen this connection
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake LLM server: " + format, *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        try:
            self._dispatch(method)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True  # the client went away (e.g. after its own timeout)

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        request = RecordedRequest(
            method=method,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            api=_api_of(url.path),
        )
        fake._record(request)
        if method == "GET":
            self._list_models(request)
            return
        if request.api == "unknown" or url.path.endswith("/api/tags"):
            self._send_json(404, {"error": f"no route for {method} {url.path}"})
            return
        denied = self._check_key(request) or _azure_ai_refusal(request)
        if denied is not None:
            self._fail(request, denied)
            return
        if request.api == "ollama" and fake.models is not None and not _has_model(fake.models, request.model):
            self._fail(request, Failure(404, f'model "{request.model}" not found, try pulling it first'))
            return
        try:
            outcome = fake._next(request)
        except Exception as exc:  # a scripted function failed: say so, loudly, as a server error
            logger.exception("fake LLM server: the scripted reply failed")
            outcome = Failure(500, f"FakeLLMServer: the scripted reply failed: {type(exc).__name__}: {exc}")
        if isinstance(outcome, Failure):
            fake._wait(outcome.delay_s)
            self._fail(request, outcome)
            return
        fake._wait(outcome.delay_s)
        answer = _render(fake, request, outcome)
        if request.stream:
            self._stream(answer)
        else:
            if answer.rate:
                fake._wait(answer.output_tokens / answer.rate)
            self._send_json(200, _BODIES[request.api](answer), cut=outcome.cut_after is not None)

    # -- responses -----------------------------------------------------------------------------

    def _list_models(self, request: RecordedRequest) -> None:
        names = self.server.fake.models or ["llama3.1", "phi3"]
        if request.path == "/api/tags":
            models = [
                {
                    "name": _tagged(n),
                    "model": _tagged(n),
                    "modified_at": _now_iso(),
                    "size": 2_176_178_913,
                    "digest": uuid.uuid5(uuid.NAMESPACE_DNS, n).hex * 2,
                    "details": {"format": "gguf", "family": n.split(":")[0], "quantization_level": "Q4_0"},
                }
                for n in names
            ]
            self._send_json(200, {"models": models})
        elif request.path == "/v1/models":
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": f"no route for GET {request.path}"})

    def _check_key(self, request: RecordedRequest) -> Failure | None:
        expected = self.server.fake.api_key
        if expected is None or request.api == "ollama":
            return None
        headers = request.headers
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        sent = {
            "openai": {bearer},
            "azure_openai": {headers.get("api-key", "")},
            "azure_ai": {headers.get("api-key", ""), bearer},
            "anthropic": {headers.get("x-api-key", ""), bearer},  # newer SDKs send the key as a bearer token
        }[request.api]
        return None if expected in sent else Failure(401)

    def _fail(self, request: RecordedRequest, failure: Failure) -> None:
        headers = {"Retry-After": _number(failure.retry_after)} if failure.retry_after is not None else {}
        self._send_json(failure.status, _error_body(request.api, failure), headers=headers)

    def _send_json(
        self, status: int, payload: Any, *, headers: Mapping[str, str] | None = None, cut: bool = False
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)

    def _stream(self, answer: _Answer) -> None:
        fake = self.server.fake
        content_type = "application/x-ndjson" if answer.request.api == "ollama" else "text/event-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        cut_after = answer.reply.cut_after
        sent = 0
        for is_content, frame in _FRAMES[answer.request.api](answer):
            if is_content:
                if cut_after is not None and sent >= cut_after:
                    if answer.reply.cut_cleanly:
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.close_connection = True  # no terminating chunk: the client sees a broken body
                    return
                if answer.rate and sent:
                    fake._wait(1 / answer.rate)
                sent += 1
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        self.wfile.write(b"0\r\n\r\n")


# -- rendering -------------------------------------------------------------------------------------


def _render(fake: FakeLLMServer, request: RecordedRequest, reply: Reply) -> _Answer:
    text = reply.text if reply.text is not None else (json.dumps(reply.data) if reply.data is not None else "")
    tool_input: dict[str, Any] | None = None
    if request.api == "anthropic" and _forced_tool(request._body) is not None:
        candidate = reply.data if reply.data is not None else _maybe_json(text)
        if isinstance(candidate, dict):
            tool_input = candidate
            text = json.dumps(candidate)
    size = fake.chunk_chars
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    estimate = sum(4 + math.ceil(len(m["content"]) / 4) for m in request.messages) + 3
    return _Answer(
        request=request,
        reply=reply,
        text=text,
        tool_input=tool_input,
        pieces=pieces,
        input_tokens=reply.input_tokens if reply.input_tokens is not None else estimate,
        output_tokens=reply.output_tokens if reply.output_tokens is not None else max(1, len(pieces)),
        rate=reply.tokens_per_s if reply.tokens_per_s is not None else fake.tokens_per_s,
        model=fake.model_aliases.get(request.model, request.model),
        ids={"id": uuid.uuid4().hex[:24], "tool": uuid.uuid4().hex[:24]},
    )


def _openai_body(a: _Answer) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{a.ids['id']}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": a.model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": a.text, "refusal": None},
                "logprobs": None,
                "finish_reason": a.reply.finish_reason or "stop",
            }
        ],
        "usage": _openai_usage(a),
    }


def _openai_usage(a: _Answer) -> dict[str, int]:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
    }


def _openai_frames(a: _Answer) -> Iterator[tuple[bool, bytes]]:
    body = a.request._body
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{a.ids['id']}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": a.model,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        payload = base | {"choices": [choice]} | ({"usage": None} if with_usage else {})
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    yield False, chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in a.pieces:
        yield True, chunk({"content": piece})
    yield False, chunk({}, a.reply.finish_reason or "stop")
    if with_usage:
        yield False, b"data: " + json.dumps(base | {"choices": [], "usage": _openai_usage(a)}).encode() + b"\n\n"
    yield False, b"data: [DONE]\n\n"


def _anthropic_body(a: _Answer) -> dict[str, Any]:
    return _anthropic_message(a, content=[_anthropic_block(a, full=True)], stop=_anthropic_stop(a))


def _anthropic_message(a: _Answer, *, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
    return {
        "id": f"msg_{a.ids['id']}",
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": a.input_tokens, "output_tokens": a.output_tokens if stop else 1},
    }


def _anthropic_block(a: _Answer, *, full: bool) -> dict[str, Any]:
    if a.tool_input is not None:
        tool = _forced_tool(a.request._body) or {}
        return {
            "type": "tool_use",
            "id": f"toolu_{a.ids['tool']}",
            "name": tool.get("name", "output"),
            "input": a.tool_input if full else {},
        }
    return {"type": "text", "text": a.text if full else ""}


def _anthropic_stop(a: _Answer) -> str:
    return a.reply.finish_reason or ("tool_use" if a.tool_input is not None else "end_turn")


def _anthropic_frames(a: _Answer) -> Iterator[tuple[bool, bytes]]:
    def event(name: str, payload: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()

    message = _anthropic_message(a, content=[], stop=None)
    yield False, event("message_start", {"type": "message_start", "message": message})
    block = _anthropic_block(a, full=False)
    yield False, event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    yield False, event("ping", {"type": "ping"})
    for piece in a.pieces:
        delta = (
            {"type": "input_json_delta", "partial_json": piece}
            if a.tool_input is not None
            else {"type": "text_delta", "text": piece}
        )
        yield True, event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    yield False, event("content_block_stop", {"type": "content_block_stop", "index": 0})
    delta_event = {
        "type": "message_delta",
        "delta": {"stop_reason": _anthropic_stop(a), "stop_sequence": None},
        "usage": {"output_tokens": a.output_tokens},
    }
    yield False, event("message_delta", delta_event)
    yield False, event("message_stop", {"type": "message_stop"})


def _ollama_line(a: _Answer, piece: str, *, done: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"model": a.model, "created_at": _now_iso()}
    if a.request.path.endswith("/api/generate"):
        line["response"] = piece
    else:
        line["message"] = {"role": "assistant", "content": piece}
    line["done"] = done
    if done:
        line |= {
            "done_reason": a.reply.finish_reason or "stop",
            "total_duration": 1_000_000 * (a.input_tokens + a.output_tokens),
            "load_duration": 1_000_000,
            "prompt_eval_count": a.input_tokens,
            "prompt_eval_duration": 500_000 * a.input_tokens,
            "eval_count": a.output_tokens,
            "eval_duration": 20_000_000 * a.output_tokens,
        }
    return line


def _ollama_body(a: _Answer) -> dict[str, Any]:
    return _ollama_line(a, a.text, done=True)


def _ollama_frames(a: _Answer) -> Iterator[tuple[bool, bytes]]:
    for piece in a.pieces:
        yield True, json.dumps(_ollama_line(a, piece, done=False)).encode() + b"\n"
    yield False, json.dumps(_ollama_line(a, "", done=True)).encode() + b"\n"


_BODIES: dict[str, Callable[[_Answer], dict[str, Any]]] = {
    "openai": _openai_body,
    "azure_openai": _openai_body,
    "azure_ai": _openai_body,
    "anthropic": _anthropic_body,
    "ollama": _ollama_body,
}
_FRAMES: dict[str, Callable[[_Answer], Iterator[tuple[bool, bytes]]]] = {
    "openai": _openai_frames,
    "azure_openai": _openai_frames,
    "azure_ai": _openai_frames,
    "anthropic": _anthropic_frames,
    "ollama": _ollama_frames,
}

_OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _error_body(api: str, failure: Failure) -> dict[str, Any]:
    status = failure.status
    if api == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        message = failure.message or ("invalid x-api-key" if status == 401 else f"{kind} (fake)")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{uuid.uuid4().hex}"}
    if api == "ollama":
        return {"error": failure.message or f"fake server error {status}"}
    if api == "azure_ai":
        code = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests"}.get(status)
        message = failure.message or ("Invalid API key." if status == 401 else f"fake Azure AI error {status}")
        return {"error": {"code": code or "InternalServerError", "message": message, "status": status}}
    if api == "azure_openai":
        message = failure.message or (
            "Access denied due to invalid subscription key or wrong API endpoint."
            if status == 401
            else f"fake Azure OpenAI error {status}"
        )
        return {"error": {"code": str(status), "message": message}}
    kind, code, message = _OPENAI_ERRORS.get(status, ("server_error", None, "The server had an error."))
    return {"error": {"message": failure.message or message, "type": kind, "param": None, "code": code}}


# -- small helpers ---------------------------------------------------------------------------------


def _api_of(path: str) -> str:
    if path == "/v1/chat/completions" or path == "/v1/models":
        return "openai"
    if path.startswith(_AZURE_PREFIX) and path.endswith("/chat/completions"):
        return "azure_openai"
    if path == "/v1/messages":
        return "anthropic"
    if path == "/chat/completions" or path.endswith("/models/chat/completions"):
        return "azure_ai"
    if path in {"/api/chat", "/api/generate", "/api/tags"}:
        return "ollama"
    return "unknown"


_AZURE_AI_JSON_SCHEMA_FROM = "2024-08-01-preview"


def _azure_ai_refusal(request: RecordedRequest) -> Failure | None:
    """What the Azure AI model inference API says to a request without an api-version, or to json_schema
    output asked for with an API version that predates it."""
    if request.api != "azure_ai":
        return None
    version = request.query.get("api-version")
    if not version:
        return Failure(400, "Missing required query parameter: api-version")
    response_format = request._body.get("response_format")
    wants_schema = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    if wants_schema and version < _AZURE_AI_JSON_SCHEMA_FROM:
        return Failure(
            400,
            "response_format value as json_schema is enabled only for api versions "
            f"{_AZURE_AI_JSON_SCHEMA_FROM} and later",
        )
    return None


def _forced_tool(body: Mapping[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if isinstance(t, dict) and t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and isinstance(tools[0], dict):
        return tools[0]
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _has_model(models: Sequence[str], name: str) -> bool:
    return _tagged(name) in {_tagged(m) for m in models}


def _tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


__all__ = ["FakeLLMServer", "Failure", "RecordedRequest", "Reply", "ReplyFunction", "echo"]
