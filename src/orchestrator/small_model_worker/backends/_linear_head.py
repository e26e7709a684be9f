"""The embedded classifier's linear head: word and character n-gram TF-IDF plus the MiniLM embedding,
one-vs-rest L2-regularised squared-hinge SVM (LinearSVC's objective), trained in numpy by truncated Newton-CG.

Only numpy is needed; the design matrix keeps its sparse TF-IDF columns in a compact form with fast
``X @ W`` and ``X.T @ G``, so 14k names train in a few seconds on a CPU.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["Matrix", "_Head"]

Matrix = NDArray[np.float32]

_WORD = re.compile(r"[^\W_]{2,}")


def _word_terms(text: str) -> list[str]:
    tokens = _WORD.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def _char_terms(text: str, shortest: int = 2, longest: int = 5) -> list[str]:
    terms: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(shortest, min(longest, len(padded)) + 1):
            terms.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return terms


@dataclass
class _Tfidf:
    """Sublinear TF-IDF over one kind of term, rows L2-normalised (as scikit-learn's TfidfVectorizer)."""

    kind: str  # "word" or "char"
    min_df: int = 1
    vocabulary: dict[str, int] = field(default_factory=dict)
    idf: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def terms(self, text: str) -> list[str]:
        return _word_terms(text) if self.kind == "word" else _char_terms(text)

    def fit(self, texts: Sequence[str]) -> _Tfidf:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(self.terms(text)))
        kept = sorted(term for term, count in df.items() if count >= self.min_df)
        self.vocabulary = {term: i for i, term in enumerate(kept)}
        n = len(texts)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in kept], dtype=np.float64)
        return self

    def rows(self, texts: Sequence[str]) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float64]]]:
        for text in texts:
            counts = Counter(t for t in self.terms(text) if t in self.vocabulary)
            index = np.fromiter((self.vocabulary[t] for t in counts), dtype=np.int64, count=len(counts))
            value = np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0
            value *= self.idf[index]
            norm = float(np.sqrt(value @ value)) or 1.0
            yield index, value / norm


class _Design:
    """A design matrix: sparse TF-IDF columns then dense columns, with fast X @ W and X.T @ G in numpy."""

    def __init__(self, rows: list[tuple[NDArray[np.int64], NDArray[np.float64]]], width: int, dense: Matrix):
        self.n = len(rows)
        self.width = width
        lengths = np.array([len(index) for index, _ in rows], dtype=np.int64)
        self.index = np.concatenate([index for index, _ in rows]) if rows else np.zeros(0, np.int64)
        self.value = (np.concatenate([v for _, v in rows]) if rows else np.zeros(0)).astype(np.float32)
        self.dense = np.hstack([dense, np.ones((self.n, 1), np.float32)]).astype(np.float32)  # bias column
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.row_of = np.repeat(np.arange(self.n), lengths)
        self.nonempty_rows = np.flatnonzero(lengths > 0)
        self.row_starts = starts[self.nonempty_rows]
        order = np.argsort(self.index, kind="stable")
        self.col_rows = self.row_of[order]
        self.col_value = self.value[order]
        counts = np.bincount(self.index, minlength=width)
        self.nonempty_cols = np.flatnonzero(counts > 0)
        self.col_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[self.nonempty_cols].astype(np.int64)

    def matmul(self, sparse: Matrix, dense: Matrix) -> Matrix:
        out: Matrix = self.dense @ dense
        if len(self.index):
            contributions = sparse[self.index] * self.value[:, None]
            out[self.nonempty_rows] += np.add.reduceat(contributions, self.row_starts, axis=0)
        return out

    def rmatmul(self, g: Matrix) -> tuple[Matrix, Matrix]:
        sparse = np.zeros((self.width, g.shape[1]), np.float32)
        if len(self.index):
            contributions = g[self.col_rows] * self.col_value[:, None]
            sparse[self.nonempty_cols] = np.add.reduceat(contributions, self.col_starts, axis=0)
        return sparse, self.dense.T @ g


def _dot(a: tuple[Matrix, Matrix], b: tuple[Matrix, Matrix]) -> float:
    return float(np.vdot(a[0], b[0]) + np.vdot(a[1], b[1]))


def _fit_svm(x: _Design, y: NDArray[np.int64], n_labels: int, c: float, tol: float = 1e-2) -> tuple[Matrix, Matrix]:
    """One-vs-rest L2-regularised squared-hinge SVM (LinearSVC's objective), by truncated Newton-CG."""
    signs = -np.ones((x.n, n_labels), np.float32)
    signs[np.arange(x.n), y] = 1.0

    def loss(w: tuple[Matrix, Matrix]) -> tuple[float, tuple[Matrix, Matrix], NDArray[np.bool_]]:
        margin = np.maximum(0.0, 1.0 - signs * x.matmul(*w))
        value = 0.5 * _dot(w, w) + c * float(np.vdot(margin, margin))
        gs, gd = x.rmatmul((-2.0 * c) * signs * margin)
        return value, (w[0] + gs, w[1] + gd), margin > 0

    w = (np.zeros((x.width, n_labels), np.float32), np.zeros((x.dense.shape[1], n_labels), np.float32))
    value, grad, active = loss(w)
    first = math.sqrt(_dot(grad, grad))
    for _ in range(12):
        if math.sqrt(_dot(grad, grad)) <= tol * first:
            break
        step = _newton_step(x, c, grad, active)
        slope = _dot(grad, step)
        scale = 1.0
        while True:  # backtracking line search (Armijo)
            trial = (w[0] + scale * step[0], w[1] + scale * step[1])
            new_value, new_grad, new_active = loss(trial)
            if new_value <= value + 1e-4 * scale * slope or scale < 1e-4:
                break
            scale *= 0.5
        w, value, grad, active = trial, new_value, new_grad, new_active
    return w


def _newton_step(x: _Design, c: float, grad: tuple[Matrix, Matrix], active: NDArray[np.bool_]) -> tuple[Matrix, Matrix]:
    """Approximately solve H s = -grad by conjugate gradients (H = I + 2C X' D X on the active margins)."""

    def hessian(v: tuple[Matrix, Matrix]) -> tuple[Matrix, Matrix]:
        hs, hd = x.rmatmul((2.0 * c) * (x.matmul(*v) * active))
        return v[0] + hs, v[1] + hd

    step = (np.zeros_like(grad[0]), np.zeros_like(grad[1]))
    residual = (-grad[0], -grad[1])
    direction = residual
    rr = _dot(residual, residual)
    stop = 0.01 * rr
    for _ in range(30):
        hd = hessian(direction)
        alpha = rr / _dot(direction, hd)
        step = (step[0] + alpha * direction[0], step[1] + alpha * direction[1])
        residual = (residual[0] - alpha * hd[0], residual[1] - alpha * hd[1])
        new_rr = _dot(residual, residual)
        if new_rr <= stop:
            break
        beta = new_rr / rr
        direction = (residual[0] + beta * direction[0], residual[1] + beta * direction[1])
        rr = new_rr
    return step


@dataclass
class _Head:
    """The trained linear head."""

    word: _Tfidf
    char: _Tfidf
    sparse: Matrix
    dense: Matrix

    @classmethod
    def fit(cls, texts: Sequence[str], vectors: Matrix, y: NDArray[np.int64], n_labels: int, c: float) -> _Head:
        word = _Tfidf("word").fit(texts)
        char = _Tfidf("char", min_df=2).fit(texts)
        design = cls._design(word, char, texts, vectors)
        sparse, dense = _fit_svm(design, y, n_labels, c)
        return cls(word, char, sparse, dense)

    @staticmethod
    def _design(word: _Tfidf, char: _Tfidf, texts: Sequence[str], vectors: Matrix) -> _Design:
        offset = len(word.vocabulary)
        rows = [
            (np.concatenate([wi, ci + offset]), np.concatenate([wv, cv]))
            for (wi, wv), (ci, cv) in zip(word.rows(texts), char.rows(texts), strict=True)
        ]
        return _Design(rows, offset + len(char.vocabulary), vectors)

    def scores(self, texts: Sequence[str], vectors: Matrix) -> Matrix:
        return self._design(self.word, self.char, texts, vectors).matmul(self.sparse, self.dense)
