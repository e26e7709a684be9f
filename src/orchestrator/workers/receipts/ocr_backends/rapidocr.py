"""The `rapidocr` back-end (default): rapidocr-onnxruntime's engine and PP-OCR ONNX models, offline, CPU.

Text boxes are found by rapidocr-onnxruntime's PP-OCRv4 detector and read by the PP-OCRv6 small recogniser
that the `rapidocr` package (RapidAI's successor to rapidocr-onnxruntime) ships in its wheel
(``OCR_REC_MODEL``: see :func:`recognition_model`).

The engine loads once, lazily, in a worker thread; each read decodes the image and runs inference in a
worker thread too, so the event loop never blocks. Boxes come back in reading order (visual rows, left
to right), and by default each row is merged into one line, so ``Latte  2 x 3.50  7.00`` stays together.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.settings import current_settings
from orchestrator.workers.receipts.ocr_backends._image import open_image
from orchestrator.workers.receipts.ocr_backends._layout import angle_from_points, box_from_points, reading_order
from orchestrator.workers.receipts.ocr_backends.base import OCR_EXTRA_HINT

if TYPE_CHECKING:
    from PIL.Image import Image


ENGINE_DEFAULTS: dict[str, Any] = {"use_cls": False, "memory_arena": True}
"""Engine settings over rapidocr's own, chosen with ``orchestrator bench receipts --profile`` (README, benchmarks):

- No text-angle classifier: it only turns boxes printed upside down, which receipts scanned or photographed
  upright do not have; without it reading is faster at the same fold-mean accuracy.
- ``memory_arena`` (ours, not rapidocr's): onnxruntime's CPU memory arena on, so buffers are reused from
  one box to the next (rapidocr turns it off); the text read is identical, with 1.06-1.17x less CPU.

Measured and not made the default, because the text read changes: one box per recognition call
(``OCR_REC_BATCH=1``, 1.1-1.3x less CPU again; fold means SROIE company -0.03, address -0.02, date -0.01,
though the text matches SROIE's own transcripts as well as before), and each box at its own width instead of
padded to 320 px (``rec_img_shape`` [3, 48, 48], faster still, but short boxes read worse: ``0.00`` as
``8.00``, ``2017`` as ``2817``).

The ONNX thread count (``intra_op_num_threads``), the recognition batch (``rec_batch_num``) and the
recognition model (``rec_model``: a name or path as ``OCR_REC_MODEL`` takes, resolved into rapidocr's
``rec_model_path``) come from the settings ``OCR_ONNX_THREADS``, ``OCR_REC_BATCH`` and ``OCR_REC_MODEL``
unless `engine_options` name them."""

REC_MODELS: dict[str, tuple[str, str] | None] = {
    "ppocrv6": ("rapidocr", "rapidocr/models/PP-OCRv6_rec_small.onnx"),
    "ppocrv4": None,
}
"""``OCR_REC_MODEL`` names: (distribution, file inside it) of the recognition model, or None for
rapidocr-onnxruntime's own (PP-OCRv4). PP-OCRv6 small reads receipts better: vendor-held-out fold means
through OCR, SROIE company 0.76 -> 0.83, address 0.74 -> 0.78, WildReceipt item names F1 0.66 -> 0.72
(README, accuracy), with its layout model and confidence weights refit on its text."""


def recognition_model(name: str | None = None) -> Path | None:
    """The recognition model file ``OCR_REC_MODEL`` (or `name`) names, or None for rapidocr-onnxruntime's own.

    The PP-OCRv6 file is found through the `rapidocr` distribution's metadata, without importing the package.

    Raises:
        ConfigurationError: the package that ships the model is not installed, or no such file.
    """
    chosen = (name if name is not None else current_settings().ocr_rec_model).strip()
    key = chosen.lower()
    if key in REC_MODELS:
        shipped = REC_MODELS[key]
        if shipped is None:
            return None
        from importlib import metadata

        distribution, member = shipped
        try:
            path = Path(str(metadata.distribution(distribution).locate_file(member)))
        except metadata.PackageNotFoundError:
            path = None
        if path is None or not path.is_file():
            raise ConfigurationError(
                f"OCR_REC_MODEL={key} needs the {distribution} package, which ships the model ({OCR_EXTRA_HINT}); "
                "or set OCR_REC_MODEL=ppocrv4 for rapidocr-onnxruntime's own"
            )
        return path
    path = Path(chosen).expanduser()
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise ConfigurationError(
            f"OCR_REC_MODEL={chosen!r}: not one of {', '.join(REC_MODELS)} and not an existing .onnx file"
        )
    return path


DEFAULT_REC_BATCH = 6
"""rapidocr's own recognition batch, the default of ``OCR_REC_BATCH``: the OCR cache key names any other."""


def engine_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The options an engine is built with: :data:`ENGINE_DEFAULTS`, the settings, then `overrides`.

    One ONNX thread per session by default (``OCR_ONNX_THREADS``): documents run in parallel across worker
    threads instead. With onnxruntime's default (a pool over every core) recognition hung, using no CPU, on
    a real SROIE receipt on a busy 2-core machine; with one thread per session it never did.
    """
    settings = current_settings()
    chosen = dict(overrides or {})
    model = recognition_model(str(chosen.pop("rec_model", settings.ocr_rec_model)))
    return {
        **ENGINE_DEFAULTS,
        "intra_op_num_threads": settings.ocr_onnx_threads,
        "inter_op_num_threads": 1,
        "rec_batch_num": settings.ocr_rec_batch,
        **({"rec_model_path": str(model)} if model is not None else {}),
        **chosen,
    }


def build_engine(options: Mapping[str, Any], source: str = "rapidocr") -> Any:
    """A ``rapidocr_onnxruntime.RapidOCR`` built with `options` (see :func:`engine_options`).

    ``memory_arena`` is ours: when true, the engine's CPU sessions are rebuilt with onnxruntime's memory
    arena on (rapidocr builds them with it off), the same thread counts, and, above one thread, no spinning
    (idle pool threads would otherwise burn a shared core waiting for work).

    Raises:
        ConfigurationError: rapidocr-onnxruntime is not installed, or a model does not load (not an ONNX
            model, or a recognition model that lists no characters); `source` names what was being read.
    """
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot read {source}: the rapidocr back-end needs rapidocr-onnxruntime; {OCR_EXTRA_HINT}"
        ) from exc
    options = dict(options)
    arena = bool(options.pop("memory_arena", False))
    try:
        engine = RapidOCR(**options)
    except Exception as exc:  # onnxruntime's load errors, rapidocr's missing character list: one line
        model = options.get("rec_model_path")
        chosen = f"the recognition model {model} (OCR_REC_MODEL)" if model else "its models"
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise ConfigurationError(f"cannot read {source}: rapidocr could not load {chosen}: {detail}") from exc
    if arena:
        threads = int(options.get("intra_op_num_threads", -1))
        for holder in _sessions(engine, with_classifier=bool(options.get("use_cls", True))):
            holder.session = _cpu_session(holder.session, threads)
    return engine


def _sessions(engine: Any, *, with_classifier: bool) -> list[Any]:
    """rapidocr's session wrappers (detector, angle classifier if used, recogniser) that run on the CPU alone."""
    holders = [getattr(engine.text_det, "infer", None), getattr(engine.text_rec, "session", None)]
    if with_classifier:
        holders.append(getattr(engine.text_cls, "session", None))
    return [
        holder
        for holder in holders
        if holder is not None
        and getattr(holder, "session", None) is not None
        and holder.session.get_providers() == ["CPUExecutionProvider"]
    ]


def _cpu_session(session: Any, threads: int) -> Any:
    """`session`'s model in a new CPU session: rapidocr's options with the memory arena on.

    `session` itself when it does not say which model file it loaded (an onnxruntime without
    ``_model_path``, or a model loaded from bytes): the engine then reads exactly as rapidocr built it.
    """
    model_path = getattr(session, "_model_path", None)
    if not isinstance(model_path, str | Path):
        return session
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.enable_cpu_mem_arena = True
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if threads >= 1:
        options.intra_op_num_threads = threads
    if threads != 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    provider = ("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})
    return ort.InferenceSession(model_path, sess_options=options, providers=[provider])


class RapidOcrBackend:
    """RapidOCR with its default models.

    Args:
        merge_rows: join the boxes of one visual row into a single line (default True).
        restore_spaces: put back spaces between words that the recogniser dropped, judged from the gaps
            in the ink (default True; see ``_spaces.py``).
        min_score: drop boxes the recogniser scores below this (RapidOCR's own default is 0.5).
        engine_options: keyword arguments for ``rapidocr_onnxruntime.RapidOCR(...)`` (and ``memory_arena``),
            over :data:`ENGINE_DEFAULTS` and the settings (see :func:`engine_options`), read when the engine
            loads.
    """

    name = "rapidocr"

    def __init__(
        self,
        *,
        merge_rows: bool = True,
        restore_spaces: bool = True,
        min_score: float = 0.5,
        engine_options: dict[str, Any] | None = None,
    ):
        self.merge_rows = merge_rows
        self.restore_spaces = restore_spaces
        self.min_score = min_score
        self._engine_overrides = dict(engine_options or {})
        self._engine: Any = None
        # A thread lock, taken only inside worker threads: two first reads must not build two engines.
        self._engine_lock = threading.Lock()

    def _load_engine(self, source: str) -> Any:
        with self._engine_lock:
            if self._engine is None:  # one engine per back-end, reused by every read (onnxruntime's run is thread-safe)
                self._engine = build_engine(engine_options(self._engine_overrides), source)
            return self._engine

    def _read_sync(self, path: Path) -> OcrResult:
        return self._recognise(open_image(path), str(path))

    def _recognise(self, image: Image, source: str) -> OcrResult:
        image = image if image.mode == "RGB" else image.convert("RGB")
        engine = self._load_engine(source)
        try:
            found, _elapsed = engine(image, text_score=self.min_score, return_word_box=self.restore_spaces)
        except Exception as exc:  # the engine's own failures: map them at this border
            raise ToolError(f"{source}: rapidocr failed ({type(exc).__name__}: {exc})", retryable=False) from exc
        fix_spaces = _space_fixer(image) if self.restore_spaces else None
        lines: list[OcrLine] = []
        for row in found or ():
            points, text, score = row[0], str(row[1]), float(row[2])
            if fix_spaces is not None and len(row) >= 5:
                text = fix_spaces(points, text, row[3], row[4])
            if text.strip():
                lines.append(
                    OcrLine(
                        text=text.strip(),
                        box=box_from_points(points),
                        confidence=min(max(score, 0.0), 1.0),
                        angle=angle_from_points(points),
                    )
                )
        lines = reading_order(lines, merge_rows=self.merge_rows)
        return OcrResult(text="\n".join(line.text for line in lines), lines=lines, backend=self.name, source=source)

    async def read(self, path: Path) -> OcrResult:
        return await anyio.to_thread.run_sync(self._read_sync, path)

    async def read_image(self, image: Image, source: str) -> OcrResult:
        return await anyio.to_thread.run_sync(self._recognise, image, source)


def _space_fixer(image: Image) -> Callable[..., str]:
    """`restore_spaces` bound to this page; numpy (a rapidocr dependency) is imported only once rapidocr is."""
    import numpy as np

    from orchestrator.workers.receipts.ocr_backends._spaces import restore_spaces

    return functools.partial(restore_spaces, np.asarray(image.convert("L")))
