"""rapidocr's speed knobs: engine options from defaults, settings and overrides; the sessions rebuilt with the
memory arena (same text); boxes recognised at their own width; the cache key; the before/now benchmark."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.evaluation.ocr_cache import raw_backend
from orchestrator.settings import Settings, use_settings
from orchestrator.workers.receipts.ocr_backends.rapidocr import ENGINE_DEFAULTS, engine_options

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CAFE = EXAMPLES / "receipts" / "cafe.png"
needs_rapidocr = pytest.mark.skipif(find_spec("rapidocr_onnxruntime") is None, reason='needs "orchestrator[ocr]"')


def test_the_defaults_are_one_thread_six_boxes_per_call_and_the_arena():
    with use_settings(Settings()):
        options = engine_options()
    assert options["intra_op_num_threads"] == 1 and options["inter_op_num_threads"] == 1
    assert options["rec_batch_num"] == 6 and "rec_img_shape" not in options  # rapidocr's: 48 x 320, as trained
    assert options["memory_arena"] is True and options["use_cls"] is False


def test_settings_choose_threads_and_batch_and_explicit_options_beat_them():
    with use_settings(Settings(ocr_onnx_threads=2, ocr_rec_batch=1)):
        assert (engine_options()["intra_op_num_threads"], engine_options()["rec_batch_num"]) == (2, 1)
        overridden = engine_options({"rec_batch_num": 3, "use_cls": True})
    assert (overridden["intra_op_num_threads"], overridden["rec_batch_num"], overridden["use_cls"]) == (2, 3, True)
    assert "rec_batch_num" not in ENGINE_DEFAULTS and ENGINE_DEFAULTS["use_cls"] is False  # not changed by a call


@pytest.mark.parametrize(
    ("variable", "value"), [("OCR_ONNX_THREADS", "0"), ("OCR_ONNX_THREADS", "many"), ("OCR_REC_BATCH", "65")]
)
def test_a_bad_thread_count_or_batch_is_one_error_naming_the_variable(variable: str, value: str):
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value}, dotenv=None)


def test_the_cache_key_names_the_reading_settings(tmp_path: Path):
    with use_settings(Settings()):
        assert raw_backend("rapidocr")[0] == "rapidocr-boxes-v4"  # the memory arena reads the same text
    with use_settings(Settings(ocr_rec_batch=1)):  # batches are padded to their widest box: other text
        assert raw_backend("rapidocr")[0] == "rapidocr-boxes-v4-batch1"
    with use_settings(Settings(ocr_onnx_threads=2)):  # threads change the speed, not the text
        assert raw_backend("rapidocr")[0] == "rapidocr-boxes-v4"
    with use_settings(Settings(ocr_rec_model="ppocrv4")):  # the recogniser before: the cache it filled
        assert raw_backend("rapidocr")[0] == "rapidocr-boxes-v3"
    own = tmp_path / "mine.onnx"
    own.write_bytes(b"a model")
    with use_settings(Settings(ocr_rec_model=str(own))):  # a file of one's own: keyed by its content
        first = raw_backend("rapidocr")[0]
        own.write_bytes(b"another model")
        assert first.startswith("rapidocr-boxes-v4-") and raw_backend("rapidocr")[0] != first


@needs_rapidocr
def test_the_recogniser_is_pp_ocrv6_from_the_rapidocr_package_unless_chosen_otherwise(tmp_path: Path):
    with use_settings(Settings()):
        path = Path(engine_options()["rec_model_path"])
    assert path.name == "PP-OCRv6_rec_small.onnx" and path.is_file() and path.parent.parent.name == "rapidocr"
    with use_settings(Settings(ocr_rec_model="ppocrv4")):
        assert "rec_model_path" not in engine_options()  # rapidocr-onnxruntime's own model
    assert "rec_model_path" not in engine_options({"rec_model": "ppocrv4"})
    for bad in ("ppocrv9", str(tmp_path / "missing.onnx"), str(tmp_path)):
        with use_settings(Settings(ocr_rec_model=bad)), pytest.raises(ConfigurationError, match="OCR_REC_MODEL"):
            engine_options()


def test_without_the_rapidocr_package_ppocrv6_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    from importlib import metadata

    def missing(name: str) -> Any:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with use_settings(Settings()), pytest.raises(ConfigurationError, match=r"needs the rapidocr package.*ppocrv4"):
        engine_options()


def _session_options(engine: Any) -> list[Any]:
    return [engine.text_det.infer.session.get_session_options(), engine.text_rec.session.session.get_session_options()]


@pytest.mark.slow
@needs_rapidocr
def test_the_memory_arena_rebuilds_the_sessions_and_reads_the_same_text():
    import numpy as np
    from PIL import Image

    from orchestrator.workers.receipts.ocr_backends.rapidocr import build_engine

    with use_settings(Settings()):
        plain = build_engine(engine_options({"memory_arena": False}))
        arena = build_engine(engine_options())
        two = build_engine(engine_options({"intra_op_num_threads": 2}))
    assert [o.enable_cpu_mem_arena for o in _session_options(plain)] == [False, False]  # rapidocr's own
    assert [(o.enable_cpu_mem_arena, o.intra_op_num_threads) for o in _session_options(arena)] == [(True, 1)] * 2
    assert {o.get_session_config_entry("session.intra_op.allow_spinning") for o in _session_options(two)} == {"0"}
    image = np.asarray(Image.open(CAFE).convert("RGB"))
    read_plain, read_arena = plain(image)[0], arena(image)[0]
    assert [row[1] for row in read_arena] == [row[1] for row in read_plain]
    assert "BLUE HERON CAFE" in [row[1] for row in read_arena]  # the engine's own text (PP-OCRv6 reads spaces)


class _Shapes:
    """Passes every recognition call to the real session, noting the shape of the batch it was given."""

    def __init__(self, session: Any):
        self.session, self.shapes = session, []

    def __call__(self, batch: Any) -> Any:
        self.shapes.append(tuple(batch.shape))
        return self.session(batch)


@pytest.mark.slow
@needs_rapidocr
@pytest.mark.parametrize(("batch", "expected"), [(1, [(1, 3, 48, 320), (1, 3, 48, 960)]), (6, [(2, 3, 48, 960)])])
def test_one_box_per_call_pads_a_short_box_to_320_not_to_the_widest_box(batch: int, expected: list[tuple[int, ...]]):
    import numpy as np

    from orchestrator.workers.receipts.ocr_backends.rapidocr import build_engine

    short, long = np.full((24, 48, 3), 255, np.uint8), np.full((24, 480, 3), 255, np.uint8)  # "7.00"; a long line
    with use_settings(Settings(ocr_rec_batch=batch)):
        engine = build_engine(engine_options())
    engine.text_rec.session = spy = _Shapes(engine.text_rec.session)
    found, _elapsed = engine.text_rec([short, long])
    assert spy.shapes == expected and len(found) == 2


@pytest.mark.slow
@needs_rapidocr
def test_the_profile_compares_settings_on_the_same_images_and_checks_the_fields():
    from orchestrator.bench.ocr import BEFORE, NOW, profile_rapidocr

    with use_settings(Settings()):
        report = profile_rapidocr([CAFE], {"before": BEFORE, "arena": {"rec_model": "ppocrv4"}, "now": NOW})
    before, arena, now = report["rows"]
    assert (before["config"], before["speedup"], before["cpu_speedup"]) == ("before", 1.0, 1.0)
    assert (before["same_fields"], before["same_text"], before["text_similarity"]) == (1.0, 1.0, 1.0)
    assert now["options"]["memory_arena"] is True and before["options"]["memory_arena"] is False
    assert arena["options"]["memory_arena"] is True and "rec_model_path" not in arena["options"]
    assert str(now["options"]["rec_model_path"]).endswith("PP-OCRv6_rec_small.onnx")
    assert now["speedup"] == pytest.approx(before["wall_s"] / now["wall_s"], rel=0.02)
    for row in (before, arena, now):
        assert row["det_s"] > 0 and row["rec_s"] > 0 and row["cpu_s"] > 0 and row["cls_s"] == 0.0
        assert row["other_s"] == pytest.approx(row["wall_s"] - row["det_s"] - row["rec_s"], abs=0.002)
    # The arena changes where buffers live, not the text; the PP-OCRv6 recogniser reads other text (spaces too).
    assert (arena["same_fields"], arena["same_text"]) == (1.0, 1.0)
    assert now["same_text"] == 0.0 and 0.5 < now["text_similarity"] < 1.0
    (size,) = report["by_size"]
    assert size["boxes"] > 10 and size["det_s_last"] > 0
    assert (report["first"], report["last"]) == ("before", "now")


def test_the_profile_needs_images_and_settings():
    from orchestrator.bench.ocr import profile_rapidocr

    with pytest.raises(ValueError, match="at least one image"):
        profile_rapidocr([], None)


@pytest.mark.slow
@needs_rapidocr
def test_bench_receipts_json_reports_rapidocr_before_and_now_with_ratios(tmp_path: Path):
    shutil.copy(CAFE, tmp_path / "cafe.png")
    shutil.copy(EXAMPLES / "receipts" / "cafe.txt", tmp_path / "cafe.txt")
    args = ["bench", "receipts", "--dir", str(tmp_path), "--images", "1", "--ocr", "rapidocr", "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert [row["backend"] for row in figures["ocr"]] == ["rapidocr"]
    before, v4, now, one = figures["rapidocr_settings"]["rows"]
    assert (before["config"], now["config"], one["options"]["rec_batch_num"]) == ("before", "now", 1)
    assert "rec_model_path" not in v4["options"] and str(now["options"]["rec_model_path"]).endswith("v6_rec_small.onnx")
    assert before["speedup"] == 1.0 and now["speedup"] > 0 and now["cpu_speedup"] > 0 and one["cpu_speedup"] > 0
    assert v4["same_text"] == 1.0  # the arena alone reads the same text as before


def test_a_session_that_does_not_name_its_model_file_is_kept_as_built():
    from orchestrator.workers.receipts.ocr_backends.rapidocr import _cpu_session

    class _FromBytes:  # an onnxruntime session loaded from bytes has no model path to rebuild from
        _model_path = None

    built = _FromBytes()
    assert _cpu_session(built, 1) is built


@needs_rapidocr
@pytest.mark.parametrize("kind", ["not an ONNX model", "a model that lists no characters"])
def test_a_recognition_model_that_does_not_load_is_one_error_naming_it(tmp_path: Path, kind: str):
    from importlib import metadata

    from orchestrator.workers.receipts.ocr_backends.rapidocr import build_engine

    if kind == "not an ONNX model":
        model = tmp_path / "broken.onnx"
        model.write_bytes(b"not a model")
    else:  # the detector: a real ONNX model, but no recogniser's character list in its metadata
        model = Path(str(metadata.distribution("rapidocr").locate_file("rapidocr/models/PP-OCRv6_det_small.onnx")))
    with use_settings(Settings(ocr_rec_model=str(model))):
        options = engine_options()
    with pytest.raises(ConfigurationError, match="OCR_REC_MODEL") as caught:
        build_engine(options, "receipt.jpg")
    message = str(caught.value)
    assert message.startswith("cannot read receipt.jpg: rapidocr could not load the recognition model")
    assert str(model) in message and "\n" not in message
