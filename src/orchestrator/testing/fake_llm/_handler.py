"""The HTTP side of :class:`~orchestrator.testing.fake_llm.FakeLLMServer`: one handler thread per connection
reads a request, records it, checks key, api-version and model, takes the next scripted reply, and sends it
as JSON or as a chunked stream, paced and cut as the reply says."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from orchestrator.testing.fake_llm import _ollama, _openai
from orchestrator.testing.fake_llm._answer import Answer, render
from orchestrator.testing.fake_llm._azure import ai_refusal
from orchestrator.testing.fake_llm._replies import Failure, Reply
from orchestrator.testing.fake_llm._request import RecordedRequest
from orchestrator.testing.fake_llm._routes import WIRES, api_of, keys_sent

logger = logging.getLogger(__name__)


class FakeState(Protocol):
    """What the handler needs from its :class:`~orchestrator.testing.fake_llm.FakeLLMServer`."""

    _lock: threading.Lock
    _connections: set[socket.socket]
    _stopping: threading.Event

    @property
    def models(self) -> list[str] | None: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def chunk_chars(self) -> int: ...
    @property
    def tokens_per_s(self) -> float | None: ...
    @property
    def model_aliases(self) -> Mapping[str, str]: ...
    def _record(self, request: RecordedRequest) -> None: ...
    def _next(self, request: RecordedRequest) -> Reply | Failure: ...
    def _wait(self, seconds: float) -> None: ...


class Server(ThreadingHTTPServer):
    """The threading HTTP server behind one :class:`FakeLLMServer` (its `fake`)."""

    daemon_threads = False  # so server_close() joins them
    fake: FakeState

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (or close() breaking a kept-alive connection) is routine; anything else is a bug.
        level = logging.DEBUG if isinstance(sys.exc_info()[1], OSError) else logging.ERROR
        logger.log(level, "fake LLM server: error while handling %s", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """Answers the requests of one connection (HTTP/1.1, kept alive)."""

    protocol_version = "HTTP/1.1"
    server: Server

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
            api=api_of(url.path),
        )
        fake._record(request)
        if method == "GET":
            self._list_models(request)
            return
        if request.api == "unknown" or url.path.endswith("/api/tags"):
            self._send_json(404, {"error": f"no route for {method} {url.path}"})
            return
        denied = self._check_key(request) or ai_refusal(request)
        if denied is not None:
            self._fail(request, denied)
            return
        if request.api == "ollama" and fake.models is not None and not _ollama.has_model(fake.models, request.model):
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
        answer = render(fake, request, outcome)
        if request.stream:
            self._stream(answer)
        else:
            if answer.rate:
                fake._wait(answer.output_tokens / answer.rate)
            self._send_json(200, WIRES[request.api].body(answer), cut=outcome.cut_after is not None)

    # -- responses -----------------------------------------------------------------------------

    def _list_models(self, request: RecordedRequest) -> None:
        names = self.server.fake.models or ["llama3.1", "phi3"]
        if request.path == "/api/tags":
            self._send_json(200, _ollama.tags_body(names))
        elif request.path == "/v1/models":
            self._send_json(200, _openai.models_body(names))
        else:
            self._send_json(404, {"error": f"no route for GET {request.path}"})

    def _check_key(self, request: RecordedRequest) -> Failure | None:
        expected = self.server.fake.api_key
        if expected is None or request.api == "ollama":
            return None
        return None if expected in keys_sent(request) else Failure(401)

    def _fail(self, request: RecordedRequest, failure: Failure) -> None:
        headers = {"Retry-After": _number(failure.retry_after)} if failure.retry_after is not None else {}
        self._send_json(failure.status, WIRES[request.api].error_body(failure), headers=headers)

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

    def _stream(self, answer: Answer) -> None:
        fake = self.server.fake
        content_type = "application/x-ndjson" if answer.request.api == "ollama" else "text/event-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        cut_after = answer.reply.cut_after
        sent = 0
        for is_content, frame in WIRES[answer.request.api].frames(answer):
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


def _number(value: float) -> str:
    """A ``Retry-After`` value: whole seconds as an int, else the float."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
