""":class:`FakeLLMServer`: the reply queue, the recorded requests, the addresses, and starting and stopping."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orchestrator.testing.fake_llm._handler import Handler, Server
from orchestrator.testing.fake_llm._replies import Failure, Reply

if TYPE_CHECKING:
    from orchestrator.testing.fake_llm._request import RecordedRequest


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
        self._httpd: Server | None = None
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
        httpd = Server(("127.0.0.1", self.port), Handler)
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
