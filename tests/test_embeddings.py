"""The shared MiniLM text embedder: found offline in its package, loaded lazily, clear when missing."""

from __future__ import annotations

import importlib.util

import anyio
import pytest

from orchestrator import embeddings
from orchestrator.embeddings import TextEmbedder, cosine, embeddings_available, minilm_path, shared_embedder
from orchestrator.errors import ConfigurationError

needs_model = pytest.mark.skipif(not embeddings_available(), reason='needs pip install "orchestrator[embedded]"')


@needs_model
def test_the_model_folder_is_found_inside_the_installed_package() -> None:
    folder = minilm_path()
    assert (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file()


def test_a_missing_package_is_a_configuration_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(embeddings, "find_spec", lambda name: None if "minilm" in name else real(name))
    with pytest.raises(ConfigurationError, match=r'pip install "orchestrator\[embedded\]"'):
        minilm_path()
    with pytest.raises(ConfigurationError, match=r"orchestrator\[embedded\]"):
        shared_embedder()


def test_cosine_similarity() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0


def test_nothing_is_loaded_until_the_first_embedding() -> None:
    assert not TextEmbedder().loaded


@pytest.mark.anyio
async def test_embedding_no_texts_loads_nothing() -> None:
    embedder = TextEmbedder()
    assert await embedder.embed([]) == [] and not embedder.loaded


@pytest.mark.slow
@needs_model
@pytest.mark.anyio
async def test_minilm_embeds_in_a_worker_thread_and_similar_requests_are_close() -> None:
    embedder = TextEmbedder()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        a, b, c = await embedder.embed(
            [
                "Process this receipt and categorize items",
                "Categorize the items on this receipt",
                "Analyze customer feedback and generate action items",
            ]
        )
        group.cancel_scope.cancel()

    assert ticks > 1  # the event loop kept running while the model loaded and ran
    assert len(a) == embeddings.DIMENSIONS and embedder.loaded
    assert cosine(a, b) > 0.85 > cosine(a, c)
