"""A local HTTP server that speaks the Azure AI Vision Read v3.2 protocol, for tests with no network.

It is a real server on 127.0.0.1 (a free port, a background thread), so the `azure` OCR back-end runs
exactly as in production: POST the image, get 202 and an ``Operation-Location``, poll until done.

What it "recognises" is what a test tells it, nothing more: :meth:`FakeAzureVision.register` maps an
image (by SHA-256 of its bytes) to lines of text, given explicitly or read from a sidecar ``<image>.txt``.
An image it was not told about reads as a page with no text. Line geometry is synthetic (one line
under the other), and every word gets the same confidence.

    with FakeAzureVision() as azure:
        azure.register(Path("examples/receipts/cafe.png"))   # lines from examples/receipts/cafe.txt
        backend = AzureReadBackend(azure.url, azure.key, poll_interval=0)
        result = await backend.read(Path("examples/receipts/cafe.png"))

Scripting: ``running_polls`` polls answer ``running`` before the final status; ``throttle_first``
requests answer 429 with ``Retry-After: retry_after``; ``fail_operations`` ends operations with
``failed``; a wrong or missing key gets 401. Every request is kept in :attr:`FakeAzureVision.requests`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

KEY_HEADER = "Ocp-Apim-Subscription-Key"
ANALYZE_PATH = "/vision/v3.2/read/analyze"
RESULTS_PREFIX = "/vision/v3.2/read/analyzeResults/"
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"%PDF")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def key(self) -> str | None:
        """The subscription key header, if sent."""
        return next((v for k, v in self.headers.items() if k.lower() == KEY_HEADER.lower()), None)


@dataclass
class _Operation:
    lines: list[str]
    created: str
    polls: int = 0


@dataclass
class _State:
    images: dict[str, list[str]] = field(default_factory=dict)
    operations: dict[str, _Operation] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    throttled: int = 0


class FakeAzureVision:
    """The Read v3.2 API on ``127.0.0.1``; use as a context manager, or call :meth:`start` and :meth:`close`.

    Args:
        key: the subscription key it accepts; anything else gets 401.
        running_polls: how many polls of an operation answer ``running`` before the final status.
        throttle_first: answer the first this-many requests (after the key check) with 429.
        retry_after: the ``Retry-After`` value sent with a 429, in seconds.
        fail_operations: end every operation with ``status: failed`` instead of ``succeeded``.
        confidence: the confidence reported for every word.
    """

    def __init__(
        self,
        key: str = "fake-azure-vision-key",
        *,
        running_polls: int = 1,
        throttle_first: int = 0,
        retry_after: float = 0,
        fail_operations: bool = False,
        confidence: float = 0.98,
    ):
        self.key = key
        self.running_polls = running_polls
        self.throttle_first = throttle_first
        self.retry_after = retry_after
        self.fail_operations = fail_operations
        self.confidence = confidence
        self._lock = threading.Lock()
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- scripting and inspection -------------------------------------------------------------------

    def register(self, image: Path | bytes, lines: Sequence[str] | None = None) -> str:
        """Make the fake "recognise" `image` as `lines`; returns the image's SHA-256.

        With `lines` omitted, `image` must be a path and the lines come from its sidecar text file
        (``receipt.png`` -> ``receipt.txt``), blank lines left out.
        """
        if isinstance(image, Path):
            data = image.read_bytes()
            if lines is None:
                sidecar = image.with_suffix(".txt")
                if not sidecar.is_file():
                    raise FileNotFoundError(f"no lines given and no sidecar {sidecar} for {image}")
                lines = [s.strip() for s in sidecar.read_text(encoding="utf-8").splitlines() if s.strip()]
        else:
            data = image
            if lines is None:
                raise ValueError("pass lines when registering image bytes")
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._state.images[digest] = list(lines)
        return digest

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._state.requests)

    @property
    def url(self) -> str:
        """The endpoint to configure, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("FakeAzureVision is not running; use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeAzureVision:
        """Start serving on a free port in a background thread."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler, self)
            # A short poll interval keeps close() (and so every test's teardown) quick.
            serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
            self._thread = threading.Thread(target=serve, name="fake-azure-vision", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> FakeAzureVision:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the protocol (called from the server's threads) --------------------------------------------

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Reply:
        request = RecordedRequest(method=method, path=path, headers=headers, body=body)
        with self._lock:
            self._state.requests.append(request)
            if request.key != self.key:
                return _error(
                    401,
                    "401",
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                    "valid key for an active subscription and use a correct regional API endpoint for your resource.",
                )
            if self._state.throttled < self.throttle_first:
                self._state.throttled += 1
                reply = _error(429, "429", f"Rate limit is exceeded. Try again in {self.retry_after:g} seconds.")
                reply.headers["Retry-After"] = f"{self.retry_after:g}"
                return reply
            route = path.split("?", 1)[0]
            if method == "POST" and route == ANALYZE_PATH:
                return self._analyze(headers, body)
            if method == "GET" and route.startswith(RESULTS_PREFIX):
                return self._result(route.removeprefix(RESULTS_PREFIX))
            return _error(404, "404", "Resource not found")

    def _analyze(self, headers: dict[str, str], body: bytes) -> _Reply:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if not content_type.startswith("application/octet-stream"):
            # The real service also takes {"url": ...}; this fake only reads image bytes.
            return _error(400, "InvalidImageUrl", "This fake accepts image bytes (application/octet-stream) only.")
        if not body.startswith(_IMAGE_MAGIC):
            return _error(400, "InvalidImageFormat", "Input data is not a valid image.")
        operation_id = str(uuid.uuid4())
        lines = self._state.images.get(hashlib.sha256(body).hexdigest(), [])
        self._state.operations[operation_id] = _Operation(lines=lines, created=_now())
        reply = _Reply(202, b"")
        reply.headers["Operation-Location"] = f"{self.url}{RESULTS_PREFIX}{operation_id}"
        return reply

    def _result(self, operation_id: str) -> _Reply:
        operation = self._state.operations.get(operation_id)
        if operation is None:
            return _error(404, "NotFound", "The requested operation was not found. The identifier may be invalid.")
        operation.polls += 1
        body: dict[str, Any] = {"createdDateTime": operation.created, "lastUpdatedDateTime": _now()}
        if operation.polls <= self.running_polls:
            body["status"] = "running"
        elif self.fail_operations:
            body["status"] = "failed"
        else:
            body["status"] = "succeeded"
            body["analyzeResult"] = _analyze_result(operation.lines, self.confidence)
        return _Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> _Reply:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return _Reply(status, body, {"Content-Type": "application/json; charset=utf-8"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _analyze_result(lines: Sequence[str], confidence: float) -> dict[str, Any]:
    """A one-page result: each line under the previous one, 12 px per character, 24 px high."""
    out: list[dict[str, Any]] = []
    for i, text in enumerate(lines):
        top, bottom = 20 + 32 * i, 44 + 32 * i
        words: list[dict[str, Any]] = []
        x = 20
        for word in text.split():
            right = x + 12 * len(word)
            words.append(
                {"boundingBox": [x, top, right, top, right, bottom, x, bottom], "text": word, "confidence": confidence}
            )
            x = right + 12
        right = max(x - 12, 21)
        out.append({"boundingBox": [20, top, right, top, right, bottom, 20, bottom], "text": text, "words": words})
    width = max((line["boundingBox"][2] for line in out), default=0) + 20
    height = 20 + 32 * len(lines) + 20
    page = {"page": 1, "angle": 0, "width": width, "height": height, "unit": "pixel", "lines": out}
    return {"version": "3.2.0", "modelVersion": "2022-04-30", "readResults": [page]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeAzureVision):
        super().__init__(address, handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.fake._handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("apim-request-id", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake azure vision: " + format, *args)
