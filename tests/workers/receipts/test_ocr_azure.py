"""The azure back-end end to end against the fake Read v3.2 server, plus transport failures via MockTransport."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.settings import Settings, use_settings
from orchestrator.testing.fake_azure_vision import FakeAzureVision
from orchestrator.workers.receipts import ocr
from orchestrator.workers.receipts.ocr import read_document, receipt_ocr, register_ocr_backend
from orchestrator.workers.receipts.ocr_backends import AzureReadBackend

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CAFE = EXAMPLES / "receipts" / "cafe.png"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(ocr, "_instances", {})
    with use_settings(Settings()):
        yield


@pytest.fixture
def azure() -> Iterator[FakeAzureVision]:
    with FakeAzureVision(running_polls=0) as fake:
        fake.register(CAFE)
        yield fake


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every anyio.sleep the back-end asks for, and don't actually wait."""
    recorded: list[float] = []
    real_sleep = anyio.sleep

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    return recorded


def backend_for(fake: FakeAzureVision, **options: Any) -> AzureReadBackend:
    return AzureReadBackend(fake.url, fake.key, poll_interval=0, **options)


def cafe_lines() -> list[str]:
    return [line.strip() for line in CAFE.with_suffix(".txt").read_text().splitlines() if line.strip()]


async def test_a_read_posts_the_image_then_polls_until_it_succeeds(azure: FakeAzureVision):
    azure.running_polls = 2
    result = await backend_for(azure).read(CAFE)

    assert result.backend == "azure"
    assert result.source == str(CAFE)
    assert [line.text for line in result.lines] == cafe_lines()
    assert result.text.splitlines() == cafe_lines()
    first = result.lines[0]
    assert first.confidence == pytest.approx(0.98)
    assert first.box is not None and len(first.box) == 4
    assert first.box[0] < first.box[2] and first.box[1] < first.box[3]

    post, *polls = azure.requests
    assert post.method == "POST"
    assert post.path == "/vision/v3.2/read/analyze"
    assert post.key == azure.key
    assert post.headers["Content-Type"] == "application/octet-stream"
    assert post.body == CAFE.read_bytes()
    assert [r.method for r in polls] == ["GET", "GET", "GET"]
    assert all(r.path.startswith("/vision/v3.2/read/analyzeResults/") and r.key == azure.key for r in polls)


async def test_the_poll_interval_is_waited_before_each_poll(azure: FakeAzureVision, sleeps: list[float]):
    azure.running_polls = 2
    await AzureReadBackend(azure.url, azure.key, poll_interval=0.25).read(CAFE)
    assert sleeps == [0.25, 0.25, 0.25]


async def test_429_is_retried_after_the_retry_after_header(azure: FakeAzureVision, sleeps: list[float]):
    azure.throttle_first = 2
    azure.retry_after = 3
    result = await backend_for(azure).read(CAFE)
    assert [line.text for line in result.lines] == cafe_lines()
    assert [r.method for r in azure.requests] == ["POST", "POST", "POST", "GET"]
    assert sleeps == [3.0, 3.0, 0]


async def test_a_long_retry_after_is_capped(azure: FakeAzureVision, sleeps: list[float]):
    azure.throttle_first = 1
    azure.retry_after = 3600
    await backend_for(azure, max_retry_after=5.0).read(CAFE)
    assert sleeps[0] == 5.0


async def test_429_past_the_retry_budget_is_a_retryable_error(azure: FakeAzureVision, sleeps: list[float]):
    azure.throttle_first = 10
    with pytest.raises(ToolError, match="throttled") as info:
        await backend_for(azure, max_retries=2).read(CAFE)
    assert info.value.retryable is True
    assert info.value.details["status_code"] == 429
    assert len(azure.requests) == 3
    assert str(CAFE) in str(info.value)


async def test_a_throttled_poll_is_retried_too(sleeps: list[float]):
    answers = iter(
        [
            httpx.Response(202, headers={"Operation-Location": "https://vision.example/op"}),
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json={"status": "succeeded", "analyzeResult": {"readResults": []}}),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: next(answers))) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        result = await backend.read(CAFE)
    assert result.lines == []
    assert sleeps == [0, 2.0]  # the poll interval, then the Retry-After; the retried GET waits no more


async def test_a_wrong_key_is_a_configuration_error_naming_the_setting(azure: FakeAzureVision):
    with pytest.raises(ConfigurationError) as info:
        await AzureReadBackend(azure.url, "wrong-key", poll_interval=0).read(CAFE)
    message = str(info.value)
    assert "401" in message
    assert "AZURE_VISION_KEY" in message
    assert str(CAFE) in message


async def test_a_failed_operation_is_a_non_retryable_error(azure: FakeAzureVision):
    azure.fail_operations = True
    with pytest.raises(ToolError, match="'failed'") as info:
        await backend_for(azure).read(CAFE)
    assert info.value.retryable is False
    assert str(CAFE) in str(info.value)


async def test_polling_gives_up_after_max_polls_as_retryable(azure: FakeAzureVision):
    azure.running_polls = 1000
    with pytest.raises(ToolError, match="still running after 3 polls") as info:
        await backend_for(azure, max_polls=3).read(CAFE)
    assert info.value.retryable is True
    assert len(azure.requests) == 4


async def test_a_read_that_takes_too_long_times_out_as_retryable(azure: FakeAzureVision):
    azure.running_polls = 10**9
    backend = AzureReadBackend(azure.url, azure.key, poll_interval=0.01, max_polls=10**9, timeout_s=0.1)
    with pytest.raises(ToolError, match="did not finish within 0.1 s") as info:
        await backend.read(CAFE)
    assert info.value.retryable is True


async def test_an_image_the_service_rejects_is_a_non_retryable_error_naming_it(azure: FakeAzureVision, tmp_path: Path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not an image")
    with pytest.raises(ToolError, match="InvalidImageFormat") as info:
        await backend_for(azure).read(bad)
    assert info.value.retryable is False
    assert info.value.details["status_code"] == 400
    assert str(bad) in str(info.value)


async def test_an_image_the_fake_was_not_told_about_reads_as_no_text(azure: FakeAzureVision):
    result = await backend_for(azure).read(EXAMPLES / "receipts" / "grocery.png")
    assert result.lines == []
    assert result.text == ""


async def test_missing_endpoint_and_key_name_both_variables(tmp_path: Path):
    with pytest.raises(ConfigurationError) as info:
        await AzureReadBackend().read(CAFE)
    assert "AZURE_VISION_ENDPOINT" in str(info.value)
    assert "AZURE_VISION_KEY" in str(info.value)


async def test_a_missing_key_alone_names_only_the_key(azure: FakeAzureVision):
    with pytest.raises(ConfigurationError) as info:
        await AzureReadBackend(endpoint=azure.url).read(CAFE)
    assert "AZURE_VISION_KEY" in str(info.value)
    assert "AZURE_VISION_ENDPOINT" not in str(info.value)


async def test_endpoint_and_key_come_from_settings_when_not_given(azure: FakeAzureVision):
    with use_settings(azure_vision_endpoint=azure.url + "/", azure_vision_key=azure.key):
        result = await AzureReadBackend(poll_interval=0).read(CAFE)
    assert result.lines


async def test_the_tool_reads_with_azure_when_settings_choose_it(azure: FakeAzureVision):
    register_ocr_backend(AzureReadBackend(poll_interval=0), replace=True)
    with use_settings(ocr_backend="azure", azure_vision_endpoint=azure.url, azure_vision_key=azure.key):
        result = await receipt_ocr(str(CAFE))
    assert result.backend == "azure"
    assert any("$29.16" in line.text for line in result.lines)


async def test_a_text_file_never_goes_to_azure(azure: FakeAzureVision):
    with use_settings(azure_vision_endpoint=azure.url, azure_vision_key=azure.key):
        result = await read_document(CAFE.with_suffix(".txt"), "azure")
    assert result.backend == "text"
    assert azure.requests == []


# -- transport failures, through an injected client -------------------------------------------------


async def test_the_injected_client_carries_every_request():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.method == "POST":
            location = "https://vision.example/vision/v3.2/read/analyzeResults/op-1"
            return httpx.Response(202, headers={"Operation-Location": location})
        body = {
            "status": "succeeded",
            "analyzeResult": {
                "readResults": [
                    {
                        "page": 1,
                        "lines": [
                            {
                                "boundingBox": [10, 20, 110, 22, 109, 40, 9, 38],
                                "text": "TOTAL 9.00",
                                "words": [{"text": "TOTAL", "confidence": 0.9}, {"text": "9.00", "confidence": 0.7}],
                            },
                            {"boundingBox": [], "text": "  ", "words": []},
                        ],
                    },
                    {"page": 2, "lines": [{"boundingBox": [1, 2, 3, 2, 3, 4, 1, 4], "text": "page two"}]},
                ]
            },
        }
        return httpx.Response(200, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = AzureReadBackend("https://vision.example/", "k", client=client, poll_interval=0, language="en")
        result = await backend.read(CAFE)

    assert seen == [
        "POST https://vision.example/vision/v3.2/read/analyze?language=en",
        "GET https://vision.example/vision/v3.2/read/analyzeResults/op-1",
    ]
    assert [line.text for line in result.lines] == ["TOTAL 9.00", "page two"]
    assert result.lines[0].box == [9.0, 20.0, 110.0, 40.0]
    assert result.lines[0].confidence == pytest.approx(0.8)
    assert result.lines[1].confidence is None


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (404, False), (413, False)])
async def test_error_statuses_map_to_tool_errors(status: int, retryable: bool):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": "Oops", "message": "something"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        with pytest.raises(ToolError, match=f"answered {status} \\(Oops: something\\)") as info:
            await backend.read(CAFE)
    assert info.value.retryable is retryable
    assert info.value.details["status_code"] == status


@pytest.mark.parametrize(
    ("error", "match"),
    [(httpx.ConnectError("refused"), "cannot reach azure"), (httpx.ReadTimeout("slow"), "timed out")],
)
async def test_network_failures_are_retryable(error: Exception, match: str):
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        with pytest.raises(ToolError, match=match) as info:
            await backend.read(CAFE)
    assert info.value.retryable is True


async def test_a_202_without_operation_location_is_an_error():
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(202))) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        with pytest.raises(ToolError, match="without an Operation-Location"):
            await backend.read(CAFE)


async def test_a_poll_answer_that_is_not_json_is_a_retryable_error():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Operation-Location": "https://vision.example/op"})
        return httpx.Response(200, text="<html>gateway</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        with pytest.raises(ToolError, match="not JSON") as info:
            await backend.read(CAFE)
    assert info.value.retryable is True


async def test_an_http_date_retry_after_is_understood(sleeps: list[float]):
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # in the past: no wait
            httpx.Response(202, headers={"Operation-Location": "https://vision.example/op"}),
            httpx.Response(200, content=json.dumps({"status": "succeeded", "analyzeResult": {}}).encode()),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: next(answers))) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        result = await backend.read(CAFE)
    assert result.lines == []
    assert sleeps[0] == 0.0


async def test_the_key_is_never_sent_to_another_host():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(202, headers={"Operation-Location": "https://attacker.example/op"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        with pytest.raises(ToolError, match="not following it") as info:
            await backend.read(CAFE)
    assert info.value.retryable is False
    assert seen == ["https://vision.example/vision/v3.2/read/analyze"]


async def test_a_relative_operation_location_is_resolved_against_the_endpoint():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.method == "POST":
            return httpx.Response(202, headers={"Operation-Location": "/vision/v3.2/read/analyzeResults/op-2"})
        return httpx.Response(200, json={"status": "succeeded", "analyzeResult": {"readResults": []}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = AzureReadBackend("https://vision.example", "k", client=client, poll_interval=0)
        await backend.read(CAFE)
    assert seen[1] == "https://vision.example/vision/v3.2/read/analyzeResults/op-2"
