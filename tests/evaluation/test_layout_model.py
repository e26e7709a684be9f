"""The receipt line-layout model: line labels, exported trees, the training script, its use by the parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.evaluation.receipt_folds import evaluate_folds
from orchestrator.evaluation.train_layout import label_lines, receipt_rows, train
from orchestrator.rules.receipt._header import read_header
from orchestrator.rules.receipt.layout_model import CLASSES, FEATURE_NAMES, LayoutModel, shipped_layout_model
from orchestrator.rules.receipt.parse import parse_with_evidence

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RECEIPTS_DATA", "/work/shared/data/receipts"))
TRUTH = {
    "company": "ALPHA SDN BHD",
    "address": "NO 3, JALAN MAJU, 47000 SELANGOR",
    "date": "12/01/2019",
    "total": "5.00",
}
TEXT = "ALPHA SDN BHD\nNO 3, JALAN MAJU,\n47000 SELANGOR\nDATE 12/01/2019\nTEA 2.00\nRICE 3.00\nTOTAL 5.00\nTHANK YOU"


def _synthetic(n: int) -> list[tuple[str, dict[str, str]]]:
    out = []
    for i in range(n):
        name = ["ALPHA", "BETA", "GAMMA", "DELTA", "OMEGA"][i % 5] + f" {'TRADING' if i % 2 else 'SDN BHD'}"
        address = f"NO {i + 1}, JALAN MAJU {i}, 4700{i % 10} SELANGOR"
        total = f"{i + 5}.00"
        text = (
            f"{name}\n{address}\nTEL 03-1234567\nDATE 1{i % 9}/01/2019\nTEA {i + 2}.00\nRICE 3.00\nTOTAL {total}\nBYE"
        )
        out.append((text, {"company": name, "address": address, "date": f"1{i % 9}/01/2019", "total": total}))
    return out


def test_lines_are_labelled_from_the_field_labels_by_fuzzy_match() -> None:
    lines = TEXT.splitlines()
    names = [CLASSES[i] for i in label_lines(lines, TRUTH)]
    assert names == ["company", "address", "address", "date", "other", "other", "total", "other"]
    # An OCR slip (0 for O) still matches; WildReceipt's per-box fields label the same way.
    wild = {"fields": {"Store_name_value": ["ALPHA"], "Store_addr_value": ["NO 3, JALAN MAJU, 47000 SELANGOR"]}}
    assert [CLASSES[i] for i in label_lines(["ALPHA", "N0 3, JALAN MAJU,"], wild)] == ["company", "address"]


def test_features_have_one_value_per_name() -> None:
    lines = TEXT.splitlines()
    rows = receipt_rows(TEXT, TRUTH)[0]
    assert len(rows) == len(lines) and all(len(row) == len(FEATURE_NAMES) for row in rows)
    assert receipt_rows("   \n", TRUTH) == ([], [])


def test_training_without_every_class_is_refused() -> None:
    rows, labels = receipt_rows("ALPHA SDN BHD\nTEA 2.00", TRUTH)
    with pytest.raises(ValueError, match="no line labelled"):
        train(rows, labels)


@pytest.fixture(scope="module")
def fitted() -> tuple[LayoutModel, object, list[list[float]]]:
    from sklearn.ensemble import GradientBoostingClassifier

    from orchestrator.evaluation import train_layout

    rows: list[list[float]] = []
    labels: list[int] = []
    for text, truth in _synthetic(10):
        x, y = receipt_rows(text, truth)
        rows += x
        labels += y
    reference = GradientBoostingClassifier(
        init="zero",
        n_estimators=train_layout.N_ESTIMATORS,
        max_depth=train_layout.MAX_DEPTH,
        learning_rate=train_layout.LEARNING_RATE,
        random_state=0,
    )
    reference.fit(rows, labels)
    return train(rows, labels), reference, rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_exported_trees_predict_what_scikit_learn_does(
    fitted: tuple[LayoutModel, Any, list[list[float]]], data: st.DataObject
) -> None:
    model, reference, rows = fitted
    row = list(data.draw(st.sampled_from(rows)))
    # Jitter the row so the comparison covers points between the training rows too.
    row = [v + data.draw(st.floats(-0.5, 0.5)) for v in row]
    expected = reference.predict_proba([row])[0]
    assert model.predict_proba(row) == pytest.approx(list(expected), abs=1e-4)


def test_the_shipped_model_loads_and_fills_an_address_the_rules_miss() -> None:
    model = shipped_layout_model()
    assert model is not None and tuple(model.classes) == CLASSES
    # No house number or postcode: the address rules find nothing; the model reads the town line as address.
    text = "AH FOOK SDN BHD\nTAMAN MELATI\nKUALA LUMPUR\nTEL 03-1234567\nRICE 3.00\nTOTAL 3.00"
    rules, _ = parse_with_evidence(text, layout=None)
    assert rules.address is None
    with_model, _ = parse_with_evidence(text)
    assert with_model.address and with_model.address in "TAMAN MELATI KUALA LUMPUR"
    # Where the rules found the header, it stands.
    lines = TEXT.splitlines()
    assert parse_with_evidence(TEXT)[0].address == read_header(lines).address


def test_a_malformed_model_file_is_refused() -> None:
    with pytest.raises(ValueError):
        LayoutModel.model_validate({"features": [], "classes": [], "learning_rate": 0, "stages": []})


def test_the_training_script_writes_a_model_the_parser_loads(tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    for i, (text, truth) in enumerate(_synthetic(8)):
        (folder / f"r{i}.txt").write_text(text, encoding="utf-8")
        (folder / f"r{i}.json").write_text(json.dumps(truth), encoding="utf-8")
    out = tmp_path / "layout.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.evaluation.train_layout", str(folder), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    model = LayoutModel.model_validate_json(out.read_text(encoding="utf-8"))
    assert model.trained_on.startswith("8 receipt texts")
    probabilities = model.classify(TEXT.splitlines(), read_header(TEXT.splitlines()))
    assert max(probabilities[0], key=lambda c: probabilities[0][c]) == "company"
    missing = subprocess.run(
        [sys.executable, "-m", "orchestrator.evaluation.train_layout", str(tmp_path / "nope"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert missing.returncode == 2 and "not a folder" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.anyio
async def test_fold_evaluation_trains_the_layout_model_per_fold(tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    for i, (text, truth) in enumerate(_synthetic(10)):
        (folder / f"r{i}.txt").write_text(text, encoding="utf-8")
        (folder / f"r{i}.json").write_text(json.dumps(truth), encoding="utf-8")
    rules = await evaluate_folds(folder, 2)
    layout = await evaluate_folds(folder, 2, layout=True)
    assert set(layout.fields) == set(rules.fields) and layout.n == rules.n == 10
