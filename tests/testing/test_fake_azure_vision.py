"""FakeAzureVision speaks Read v3.2 over real HTTP: checked here with a plain synchronous httpx client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.testing.fake_azure_vision import FakeAzureVision

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ANALYZE = "/vision/v3.2/read/analyze"


@pytest.fixture
def fake() -> Iterator[FakeAzureVision]:
    with FakeAzureVision(key="k", running_polls=0) as server:
        yield server


@pytest.fixture
def client(fake: FakeAzureVision) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, headers={"Ocp-Apim-Subscription-Key": "k"}, timeout=5) as c:
        yield c


def submit(client: httpx.Client, image: bytes = PNG) -> str:
    response = client.post(ANALYZE, content=image, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 202
    assert response.content == b""
    return response.headers["Operation-Location"]


def test_the_url_is_a_local_port(fake: FakeAzureVision):
    assert fake.url.startswith("http://127.0.0.1:")
    assert not fake.url.endswith("/")


def test_a_submitted_image_gets_an_operation_on_the_same_server(fake: FakeAzureVision, client: httpx.Client):
    location = submit(client)
    assert location.startswith(fake.url + "/vision/v3.2/read/analyzeResults/")


def test_registered_lines_come_back_in_the_v32_result_shape(fake: FakeAzureVision, client: httpx.Client):
    digest = fake.register(PNG, ["TOTAL 9.00", "Thank you"])
    assert digest == hashlib.sha256(PNG).hexdigest()
    body = client.get(submit(client)).json()

    assert body["status"] == "succeeded"
    assert {"createdDateTime", "lastUpdatedDateTime"} <= body.keys()
    page = body["analyzeResult"]["readResults"][0]
    assert page["page"] == 1 and page["unit"] == "pixel"
    assert [line["text"] for line in page["lines"]] == ["TOTAL 9.00", "Thank you"]
    first = page["lines"][0]
    assert len(first["boundingBox"]) == 8
    assert [word["text"] for word in first["words"]] == ["TOTAL", "9.00"]
    assert all(word["confidence"] == 0.98 and len(word["boundingBox"]) == 8 for word in first["words"])
    second = page["lines"][1]
    assert second["boundingBox"][1] > first["boundingBox"][5]  # one line under the other


def test_operations_run_for_the_configured_number_of_polls(fake: FakeAzureVision, client: httpx.Client):
    fake.running_polls = 2
    location = submit(client)
    statuses = [client.get(location).json()["status"] for _ in range(3)]
    assert statuses == ["running", "running", "succeeded"]


def test_operations_can_be_made_to_fail(fake: FakeAzureVision, client: httpx.Client):
    fake.fail_operations = True
    body = client.get(submit(client)).json()
    assert body["status"] == "failed"
    assert "analyzeResult" not in body


def test_the_first_requests_can_be_throttled(fake: FakeAzureVision, client: httpx.Client):
    fake.throttle_first = 2
    fake.retry_after = 7
    for _ in range(2):
        response = client.post(ANALYZE, content=PNG, headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["error"]["code"] == "429"
    submit(client)


@pytest.mark.parametrize("headers", [{}, {"Ocp-Apim-Subscription-Key": "wrong"}])
def test_a_missing_or_wrong_key_gets_401(fake: FakeAzureVision, headers: dict[str, str]):
    with httpx.Client(base_url=fake.url, headers=headers) as anonymous:
        response = anonymous.post(ANALYZE, content=PNG, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 401
    assert "invalid subscription key" in response.json()["error"]["message"]


def test_the_key_is_checked_before_throttling(fake: FakeAzureVision):
    fake.throttle_first = 1
    with httpx.Client(base_url=fake.url) as anonymous:
        assert anonymous.post(ANALYZE, content=PNG).status_code == 401


def test_bytes_that_are_not_an_image_get_400(client: httpx.Client):
    response = client.post(ANALYZE, content=b"hello", headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidImageFormat"


def test_an_image_url_request_is_refused_honestly(client: httpx.Client):
    response = client.post(ANALYZE, json={"url": "https://example.com/r.png"})
    assert response.status_code == 400
    assert "image bytes" in response.json()["error"]["message"]


def test_an_unknown_operation_or_path_gets_404(client: httpx.Client):
    assert client.get("/vision/v3.2/read/analyzeResults/nope").status_code == 404
    assert client.get("/vision/v3.1/whatever").status_code == 404


def test_an_image_it_was_not_told_about_has_no_text(client: httpx.Client):
    body = client.get(submit(client)).json()
    assert body["analyzeResult"]["readResults"][0]["lines"] == []


def test_a_registered_path_reads_its_sidecar_text(fake: FakeAzureVision, client: httpx.Client, tmp_path: Path):
    image = tmp_path / "r.png"
    image.write_bytes(PNG + b"sidecar")
    image.with_suffix(".txt").write_text("SHOP\n\nTOTAL  4.50\n", encoding="utf-8")
    fake.register(image)
    body = client.get(submit(client, image.read_bytes())).json()
    assert [line["text"] for line in body["analyzeResult"]["readResults"][0]["lines"]] == ["SHOP", "TOTAL  4.50"]


def test_registering_needs_lines_or_a_sidecar(fake: FakeAzureVision, tmp_path: Path):
    image = tmp_path / "r.png"
    image.write_bytes(PNG)
    with pytest.raises(FileNotFoundError, match="sidecar"):
        fake.register(image)
    with pytest.raises(ValueError, match="pass lines"):
        fake.register(PNG)


def test_requests_are_recorded_in_order(fake: FakeAzureVision, client: httpx.Client):
    location = submit(client)
    client.get(location)
    post, get = fake.requests
    assert (post.method, post.path, post.body, post.key) == ("POST", ANALYZE, PNG, "k")
    assert (get.method, get.body) == ("GET", b"")
    assert location.endswith(get.path)


def test_the_url_is_unavailable_when_not_running():
    fake = FakeAzureVision()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    fake.start()
    fake.close()
    with pytest.raises(RuntimeError):
        _ = fake.url
