"""SmallModelWorker on the transformers back-end: a tiny random model built here, so every valid answer is the
constrained decoder's doing. Its output parses and validates, and is recorded as the model's."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from orchestrator.settings import Settings
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.testing.tiny_models import build_tiny_causal_lm

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("lmformatenforcer")

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "model")


class Vendor(BaseModel):
    vendor: str = Field(max_length=12)
    paid: bool


async def test_a_weak_local_model_can_only_answer_with_valid_json(model_dir: Path, isolated_settings: Settings) -> None:
    torch.set_num_threads(1)  # a model this small only loses time to thread hand-offs
    worker = SmallModelWorker(  # threshold 0: the model's answer is final, whatever confidence it states
        "transformers", str(model_dir), settings=isolated_settings, cascade=("llm",), threshold=0.0
    )
    labels = ["food", "travel", "office"]
    results = await worker.classify(["coffee and a bagel", "flight to Boston", "stapler"], labels)
    assert worker.mode == "transformers:model"
    assert [r.mode for r in results] == ["transformers:model"] * 3
    assert all(r.label in labels and 0 <= r.confidence <= 1 for r in results)
    found = await worker.extract_entities("Invoice from ACME, paid in full", Vendor)
    assert found.mode == "transformers:model"
    Vendor.model_validate(found.data)
