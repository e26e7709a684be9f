"""The `azure` back-end: Azure AI Vision Read API v3.2, over HTTP with an injectable ``httpx.AsyncClient``.

The protocol: ``POST {endpoint}/vision/v3.2/read/analyze`` with the image bytes answers 202 and an
``Operation-Location`` URL; ``GET`` that URL until ``status`` is ``succeeded`` or ``failed``. A 429 is
retried after its ``Retry-After`` (a bounded number of times, each wait capped). Every failure becomes an
error from our tree at this border:

- missing endpoint or key, or a 401/403 answer: :class:`~orchestrator.errors.ConfigurationError`
- 400 and other 4xx (bad image, too large), ``status: failed``: ``ToolError(retryable=False)``
- 429 after the retries, 5xx, network errors, timeouts, polls exhausted: ``ToolError(retryable=True)``

Tests pass a client built on ``httpx.MockTransport``, or point the endpoint at
:class:`orchestrator.testing.fake_azure_vision.FakeAzureVision`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.settings import current_settings
from orchestrator.workers.receipts.ocr_backends._layout import box_from_points
from orchestrator.workers.receipts.ocr_backends.base import check_file

if TYPE_CHECKING:  # httpx is imported when the back-end first reads, so listing tools stays fast
    import httpx

logger = logging.getLogger(__name__)

READ_PATH = "/vision/v3.2/read/analyze"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
DEFAULT_TIMEOUT_S = 30.0
"""Seconds per request (connecting: at most 10)."""


class AzureReadBackend:
    """Azure AI Vision Read v3.2.

    Args:
        endpoint: the resource endpoint, e.g. ``https://myres.cognitiveservices.azure.com``
            (default: settings ``AZURE_VISION_ENDPOINT``).
        key: the subscription key (default: settings ``AZURE_VISION_KEY``).
        client: the HTTP client to use; by default one is made per read with `DEFAULT_TIMEOUT_S`.
        poll_interval: seconds to wait before each poll of the operation.
        max_polls: give up (retryable) after this many polls that say ``notStarted`` or ``running``.
        timeout_s: give up (retryable) when a whole read takes longer than this.
        max_retries: how many 429 answers to wait out per request before giving up (retryable).
        max_retry_after: the longest single wait a ``Retry-After`` header can ask for, in seconds.
        language: optional BCP-47 code passed as ``language``; by default the service detects it.
    """

    name = "azure"

    def __init__(
        self,
        endpoint: str | None = None,
        key: str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        poll_interval: float = 1.0,
        max_polls: int = 60,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_retry_after: float = 30.0,
        language: str | None = None,
    ):
        self.endpoint = endpoint
        self.key = key
        self.client = client
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.language = language

    def _credentials(self) -> tuple[str, str]:
        settings = current_settings()
        endpoint = self.endpoint or settings.azure_vision_endpoint
        key = self.key or settings.azure_vision_key
        missing = [
            hint
            for value, hint in (
                (endpoint, "AZURE_VISION_ENDPOINT (or AzureReadBackend(endpoint=...))"),
                (key, "AZURE_VISION_KEY (or AzureReadBackend(key=...))"),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"the azure OCR back-end needs {' and '.join(missing)}")
        assert endpoint is not None and key is not None
        return endpoint.rstrip("/"), key

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.client is not None:
            yield self.client
        else:
            import httpx

            async with httpx.AsyncClient(timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, connect=10.0)) as client:
                yield client

    async def read(self, path: Path) -> OcrResult:
        endpoint, key = self._credentials()
        check_file(path)
        try:
            data = await anyio.Path(path).read_bytes()
        except OSError as exc:
            raise ToolError(f"{path}: cannot read file ({exc})", retryable=False, details={"path": str(path)}) from exc
        try:
            with anyio.fail_after(self.timeout_s):
                async with self._client() as client:
                    result = await self._analyze(client, endpoint, key, data, path)
        except TimeoutError as exc:
            raise ToolError(f"{path}: azure read did not finish within {self.timeout_s} s", retryable=True) from exc
        return _to_result(result, path, self.name)

    async def _analyze(
        self, client: httpx.AsyncClient, endpoint: str, key: str, data: bytes, path: Path
    ) -> Mapping[str, Any]:
        import httpx

        params = {"language": self.language} if self.language else None
        response = await self._send(
            client,
            "POST",
            endpoint + READ_PATH,
            path,
            headers={KEY_HEADER: key, "Content-Type": "application/octet-stream"},
            content=data,
            params=params,
        )
        if response.status_code != 202 or "Operation-Location" not in response.headers:
            raise ToolError(
                f"{path}: azure read answered {response.status_code} without an Operation-Location",
                retryable=False,
                details={"status_code": response.status_code, "body": response.text[:500]},
            )
        operation = str(httpx.URL(endpoint).join(response.headers["Operation-Location"]))
        if httpx.URL(operation).host != httpx.URL(endpoint).host:
            # The key goes with every poll: never send it to a host other than the configured endpoint.
            raise ToolError(
                f"{path}: azure read pointed to {operation}, which is not on {endpoint}; not following it",
                retryable=False,
            )
        for _ in range(self.max_polls):
            await anyio.sleep(self.poll_interval)
            response = await self._send(client, "GET", operation, path, headers={KEY_HEADER: key})
            body = _json(response, path)
            status = str(body.get("status", "")).lower()
            if status == "succeeded":
                return body
            if status == "failed":
                raise ToolError(
                    f"{path}: azure read reported status 'failed'",
                    retryable=False,
                    details={"operation": operation, "body": response.text[:500]},
                )
            if status not in ("notstarted", "running"):
                raise ToolError(f"{path}: azure read returned an unknown status {status!r}", retryable=False)
        raise ToolError(
            f"{path}: azure read still running after {self.max_polls} polls",
            retryable=True,
            details={"operation": operation},
        )

    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, path: Path, **kwargs: Any
    ) -> httpx.Response:
        """Send one request; wait out 429s (bounded), map transport errors and error statuses."""
        import httpx

        for attempt in range(self.max_retries + 1):
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                raise ToolError(f"{path}: azure read timed out ({type(exc).__name__})", retryable=True) from exc
            except httpx.TransportError as exc:
                raise ToolError(f"{path}: cannot reach azure at {url} ({exc})", retryable=True) from exc
            if response.status_code != 429:
                _raise_for_status(response, path)
                return response
            if attempt < self.max_retries:
                wait = min(
                    _retry_after(response.headers.get("Retry-After"), default=2.0**attempt), self.max_retry_after
                )
                logger.info("azure read throttled (429); retrying %s in %.1f s", method, wait)
                await anyio.sleep(wait)
        raise ToolError(
            f"{path}: azure read throttled (429) {self.max_retries + 1} times; giving up",
            retryable=True,
            details={"status_code": 429, "retry_after": response.headers.get("Retry-After")},
        )


def _retry_after(value: str | None, *, default: float) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _error_text(response: httpx.Response) -> str:
    """The service's ``{"error": {"code", "message"}}``, or the start of the body."""
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return response.text[:200]


def _raise_for_status(response: httpx.Response, path: Path) -> None:
    status = response.status_code
    if status < 400:
        return
    details = {"status_code": status, "body": response.text[:500]}
    message = f"{path}: azure read answered {status} ({_error_text(response)})"
    if status in (401, 403):
        raise ConfigurationError(message + "; check AZURE_VISION_KEY and AZURE_VISION_ENDPOINT")
    raise ToolError(message, retryable=status >= 500 or status == 408, details=details)


def _json(response: httpx.Response, path: Path) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ToolError(f"{path}: azure read returned a body that is not JSON", retryable=True) from exc
    if not isinstance(body, dict):
        raise ToolError(f"{path}: azure read returned unexpected JSON", retryable=False)
    return body


def _to_result(body: Mapping[str, Any], path: Path, backend: str) -> OcrResult:
    """Map ``analyzeResult.readResults[].lines[]`` to OcrLines: 8-number polygon to [x1, y1, x2, y2],
    confidence the mean of the words' confidences. Pages follow each other in order."""
    lines: list[OcrLine] = []
    for page in (body.get("analyzeResult") or {}).get("readResults") or ():
        for line in page.get("lines") or ():
            text = str(line.get("text", "")).strip()
            if not text:
                continue
            polygon = line.get("boundingBox") or []
            box = box_from_points(zip(polygon[0::2], polygon[1::2], strict=False)) if len(polygon) >= 2 else None
            confidences = [float(w["confidence"]) for w in line.get("words") or () if "confidence" in w]
            confidence = sum(confidences) / len(confidences) if confidences else None
            if confidence is not None:
                confidence = min(max(confidence, 0.0), 1.0)
            lines.append(OcrLine(text=text, box=box, confidence=confidence))
    return OcrResult(text="\n".join(line.text for line in lines), lines=lines, backend=backend, source=str(path))
