"""Vendor-held-out folds, held-out confidence, the escalation curve, the OCR cache, and the CLI around them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.evaluation.ocr_cache import OcrCache
from orchestrator.evaluation.receipt_folds import (
    assign_folds,
    escalation_curve,
    evaluate_folds,
    pooled_escalation,
    share_needed,
    vendor_key,
)
from orchestrator.rules.models import OcrResult, ParsedReceipt
from orchestrator.testing.fake_llm import FakeLLMServer
from orchestrator.testing.fake_small_model import SmallModelResponder
from orchestrator.workers.receipts.ocr_backends import TextBackend

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]

GOOD = (
    "{name}\nNO 3, JALAN MAJU, 47000 SELANGOR\n12/01/2019\nTEA 2.00\nRICE 3.00\nSUBTOTAL 5.00\nTOTAL {total}\n"
    "CASH {total}"
)
UNSURE = "{name}\nNO 3, JALAN MAJU, 47000 SELANGOR\n12/01/2019\nTEA 9.00\nTOTAL {total}"


def write_sroie(folder: Path, receipt: str, company: str, text: str, total: str = "5.00") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    truth = {"company": company, "date": "12/01/2019", "address": "NO 3, JALAN MAJU, 47000 SELANGOR", "total": total}
    (folder / f"{receipt}.json").write_text(json.dumps(truth), encoding="utf-8")
    (folder / f"{receipt}.txt").write_text(text.format(name=company, total=total), encoding="utf-8")


def small_folder(folder: Path) -> Path:
    """Six receipts of four vendors; two print a total their items do not add up to."""
    write_sroie(folder, "a1", "ALPHA SDN BHD", GOOD)
    write_sroie(folder, "a2", "Alpha Sdn. Bhd.", GOOD)
    write_sroie(folder, "b1", "BETA TRADING", GOOD)
    write_sroie(folder, "c1", "GAMMA ENTERPRISE", UNSURE)
    write_sroie(folder, "d1", "DELTA (M) SDN BHD", GOOD)
    write_sroie(folder, "d2", "DELTA SDN BHD", UNSURE, total="7.00")
    return folder


def test_vendor_names_are_compared_without_company_forms_and_punctuation() -> None:
    assert vendor_key({"company": "Alpha Sdn. Bhd."}) == vendor_key({"company": "ALPHA SDN BHD"}) == "ALPHA"
    assert vendor_key({"company": "DELTA (M) SDN BHD"}) == "DELTA"
    assert vendor_key({"fields": {"Store_name_value": ["KOREAN", "RESTAURANT"]}}) == "KOREANRESTAURANT"


@given(
    vendors=st.dictionaries(st.text("abc", min_size=1, max_size=4), st.sampled_from("PQRSTUVW"), min_size=4),
    k=st.integers(2, 4),
)
def test_every_vendor_lands_in_exactly_one_fold_and_every_fold_is_used(vendors: dict[str, str], k: int) -> None:
    if len(set(vendors.values())) < k:
        with pytest.raises(ValueError, match="vendors cannot fill"):
            assign_folds(vendors, k)
        return
    folds = assign_folds(vendors, k)
    assert set(folds) == set(vendors)
    for vendor in set(vendors.values()):
        assert len({folds[r] for r, v in vendors.items() if v == vendor}) == 1
    assert set(folds.values()) == set(range(k))
    assert assign_folds(dict(reversed(list(vendors.items()))), k) == folds  # no dependence on order


async def test_fold_scores_are_means_and_spreads_over_vendor_held_out_folds(tmp_path: Path) -> None:
    report = await evaluate_folds(small_folder(tmp_path), 2)
    assert (report.n, report.vendors, report.k) == (6, 4, 2)
    folds = {r["id"]: r["fold"] for r in report.receipts}
    assert folds["a1"] == folds["a2"] and folds["d1"] == folds["d2"]
    total = report.fields["total"]
    assert len(total.folds) == 2 and total.n == 6
    assert total.mean == pytest.approx(sum(total.folds) / 2, abs=1e-4)
    assert total.spread == pytest.approx(abs(total.folds[0] - total.folds[1]) / 2, abs=1e-4)
    assert report.fields["company"].mean == 1.0
    assert {row.field for row in report.reliability} >= {"total", "merchant", "address", "date"}
    assert [p.share for p in report.escalation][:3] == [0.0, 0.05, 0.10]


def learning_folder(folder: Path) -> tuple[Path, set[str]]:
    """24 receipts of 12 vendors; a third print a total their items do not add up to, and it is wrong."""
    wrong: set[str] = set()
    for vendor in range(12):
        for copy in range(2):
            receipt = f"v{vendor:02d}_{copy}"
            unsure = (vendor + copy) % 3 == 0
            text = "{name}\n12/01/2019\nTEA 2.00\nRICE 3.00\nTOTAL 9.50" if unsure else GOOD
            write_sroie(folder, receipt, f"VENDOR {chr(65 + vendor)} SDN BHD", text)
            if unsure:
                wrong.add(receipt)
    return folder, wrong


async def test_the_unsure_receipts_are_escalated_and_the_answering_tier_counted(tmp_path: Path) -> None:
    folder, wrong = learning_folder(tmp_path)
    asked: list[str] = []

    async def escalate(text: str) -> ParsedReceipt:
        asked.append(text)
        return ParsedReceipt(total=5.0, mode="big", escalated=["small", "big"])

    report = await evaluate_folds(folder, 2, escalate=escalate, threshold=0.5)
    escalated = {r["id"] for r in report.receipts if r.get("escalated")}
    assert escalated == wrong  # the weights fitted on the other fold single out the receipts that disagree
    assert report.answered == {"keyword": 16, "big": 8} and report.calls == {"small": 8, "big": 8}
    assert report.fields["total"].mean == 1.0
    kept = [r["confidence"]["total"] for r in report.receipts if r["id"] not in wrong]
    assert min(kept) > max(r["confidence"]["total"] for r in report.receipts if r["id"] in wrong)


def test_the_escalation_curve_keeps_the_most_confident_receipts() -> None:
    scored = [(0.1, False), (0.2, False), (0.5, True), (0.9, True), (0.95, True)]
    curve = escalation_curve(scored, shares=(0.0, 0.2, 0.4))
    assert [(p.kept, p.accuracy) for p in curve] == [(5, 0.6), (4, 0.75), (3, 1.0)]
    assert share_needed(scored, 0.98) == 0.4
    assert share_needed([(0.5, False)], 0.98) is None


class CountingBackend(TextBackend):
    """The text back-end, counting the documents it really reads."""

    def __init__(self) -> None:
        self.reads = 0

    async def read(self, path: Path) -> OcrResult:
        self.reads += 1
        return await super().read(path)


async def test_the_ocr_cache_reads_each_file_content_once(tmp_path: Path) -> None:
    document = tmp_path / "r.txt"
    document.write_text("SHOP\nTOTAL 1.00", encoding="utf-8")
    backend = CountingBackend()
    cache = OcrCache(backend, "text-v1", tmp_path / "cache")
    first = await cache.read(document)
    again = await OcrCache(backend, "text-v1", tmp_path / "cache").read(document)  # a new process, same folder
    assert first == again and backend.reads == 1
    document.write_text("SHOP\nTOTAL 2.00", encoding="utf-8")  # new content: a new key
    assert "2.00" in (await cache.read(document)).text and backend.reads == 2
    await OcrCache(backend, "other-config", tmp_path / "cache").read(document)  # another back-end key
    assert backend.reads == 3
    cache.path_for(document).write_text("{not json", encoding="utf-8")  # a corrupt entry is read again
    assert "2.00" in (await cache.read(document)).text and backend.reads == 4


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_eval_folds_prints_fold_means_reliability_and_the_escalation_curve(tmp_path: Path) -> None:
    proc = cli("eval", "receipts", str(small_folder(tmp_path / "r")), "--folds", "2")
    assert proc.returncode == 0, proc.stderr
    for heading in ("fold mean", "vendor-held-out folds", "reliability", "escalation curve", "kept totals"):
        assert heading in proc.stdout
    data = json.loads(cli("eval", "receipts", str(tmp_path / "r"), "--folds", "2", "--json").stdout)
    assert data["k"] == 2 and set(data["fields"]) == {"address", "company", "date", "total"}


def test_eval_folds_with_more_folds_than_vendors_is_a_user_error(tmp_path: Path) -> None:
    proc = cli("eval", "receipts", str(small_folder(tmp_path / "r")), "--folds", "9")
    assert proc.returncode == 2
    assert "4 vendors cannot fill 9 folds" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def fake_model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=SmallModelResponder()) as server:
        yield server


def test_eval_cascade_escalates_unsure_receipts_to_the_fake_small_model(
    tmp_path: Path, fake_model: FakeLLMServer
) -> None:
    env = {
        "ORCHESTRATOR_HOME": str(tmp_path / "home"),
        "SMALL_MODEL_BACKEND": "ollama",
        "OLLAMA_API_URL": fake_model.base_url,
        "SMALL_MODEL_CACHE": "false",
    }
    folder, wrong = learning_folder(tmp_path / "r")
    proc = cli("eval", "receipts", str(folder), "--cascade", "--threshold", "0.5", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    escalated = {r["id"] for r in data["receipts"] if r.get("escalated")}
    assert escalated == wrong
    assert data["calls"] == {"ollama:phi3": 8} and len(fake_model.requests) == 8
    assert data["answered"]["keyword"] == 16


def test_eval_cascade_without_a_model_to_escalate_to_says_how_to_get_one(tmp_path: Path) -> None:
    env = {"ORCHESTRATOR_HOME": str(tmp_path / "home"), "SMALL_MODEL_BACKEND": "embedded", "PLANNER_PROVIDER": ""}
    proc = cli("eval", "receipts", str(small_folder(tmp_path / "r")), "--cascade", env=env)
    assert proc.returncode == 2, proc.stdout
    assert "fake-model" in proc.stderr and "Traceback" not in proc.stderr


# -- several folders: each on its own folds, one escalation curve over all ----------------------------------


async def test_the_pooled_curve_ranks_every_folders_receipts_together(tmp_path: Path) -> None:
    first = await evaluate_folds(small_folder(tmp_path / "a"), 2)
    second = await evaluate_folds(learning_folder(tmp_path / "b")[0], 2)
    pooled = pooled_escalation([first, second])
    assert pooled.n == first.n + second.n == 30
    scored = [(r["confidence"]["total"], r["right"]["total"]) for rep in (first, second) for r in rep.receipts]
    assert pooled.escalation == escalation_curve(scored)
    assert pooled.share_for_98 == share_needed(scored)
    assert sum(row.n for row in pooled.reliability) == 30 and {row.field for row in pooled.reliability} == {"total"}
    assert pooled.folders == [first.folder, second.folder]


def test_eval_with_two_folders_prints_each_report_and_the_pooled_curve(tmp_path: Path) -> None:
    a, b = small_folder(tmp_path / "a"), learning_folder(tmp_path / "b")[0]
    proc = cli("eval", "receipts", str(a), str(b), "--folds", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("kept totals reach 98% right") + proc.stdout.count("no share escalated") == 3
    assert "pooled escalation curve (30 totals" in proc.stdout
    data = json.loads(cli("eval", "receipts", str(a), str(b), "--folds", "2", "--json").stdout)
    assert [r["n"] for r in data["reports"]] == [6, 24] and data["pooled"]["n"] == 30


def test_two_folders_without_folds_is_a_user_error(tmp_path: Path) -> None:
    a, b = small_folder(tmp_path / "a"), small_folder(tmp_path / "b")
    proc = cli("eval", "receipts", str(a), str(b))
    assert proc.returncode == 2
    assert "only with --folds" in proc.stderr and "Traceback" not in proc.stderr
