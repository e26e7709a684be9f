"""A receipt the keyword parser is unsure of goes up the cascade: the small model, then the large one while the
budget allows; a sure one makes no model call. Each result records the tiers asked and the one that answered.

The thresholds are set from the keyword parse's own confidence (whatever the shipped weights say), so these
tests check the cascade's routing, not the numbers of one set of fitted weights; that a receipt whose items do
not add up is less sure than one whose numbers agree is checked here too, against the shipped weights."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.rules.receipt.parse import parse_receipt_text
from orchestrator.settings import Settings
from orchestrator.small_model_worker import SmallModelWorker
from orchestrator.small_model_worker.worker import receipt_score
from orchestrator.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply
from orchestrator.testing.fake_small_model import SmallModelResponder

from .conftest import KEY

pytestmark = pytest.mark.anyio

SURE = "CORNER CAFE\nLatte 3.50\nMuffin 2.75\nSubtotal 6.25\nTax 0.50\nTOTAL 6.75\nCASH 10.00\nCHANGE 3.25"
UNSURE = "CORNER CAFE\nLatte 3.50\nMuffin 2.75\nTOTAL 9.99"  # the items do not add up to the total


def answering(total: float, *, tokens: int = 10) -> Any:
    """A fake model that reads the receipt as the rules do but states `total` (and the items and subtotal to
    match it, so its parse's numbers agree: confidence 1)."""
    rules = SmallModelResponder()

    def reply(request: RecordedRequest) -> Reply:
        data = rules.answer(request)
        data["total"] = total
        data["subtotal"] = total
        data["tax"] = None
        data["items"] = [{"name": "Latte", "quantity": 1, "unit_price": None, "amount": total}]
        return Reply(data=data, input_tokens=tokens, output_tokens=10)

    return reply


def unsure_cut() -> float:
    """A threshold the unsure receipt's keyword parse falls below and an agreeing model parse reaches."""
    return (receipt_score(parse_receipt_text(UNSURE)) + 1.0) / 2


def worker(server: FakeLLMServer, settings: Settings, threshold: float, **options: Any) -> SmallModelWorker:
    settings = settings.model_copy(
        update={
            "openai_api_key": KEY,
            "openai_base_url": server.openai_url,
            "small_model_max_retries": 0,
            "small_model_cache": False,
            "small_model_thresholds": {"parse": threshold},
        }
    )
    return SmallModelWorker("ollama", "phi3", settings=settings, base_url=server.base_url, **options)


def test_items_that_do_not_add_up_make_the_keyword_parse_less_sure() -> None:
    assert receipt_score(parse_receipt_text(UNSURE)) < receipt_score(parse_receipt_text(SURE))


async def test_a_sure_receipt_is_answered_by_the_keywords_with_no_model_call(isolated_settings: Settings) -> None:
    sure = receipt_score(parse_receipt_text(SURE))
    with FakeLLMServer(default=answering(6.75), api_key=KEY) as server:
        async with worker(server, isolated_settings, sure, cascade=("keyword", "llm", "large")) as w:
            receipt = await w.parse_line_items(SURE)
        assert server.requests == []
    assert (receipt.mode, receipt.escalated, receipt.total) == ("keyword", [], 6.75)


async def test_an_unsure_receipt_goes_to_the_small_model_then_the_large_one(isolated_settings: Settings) -> None:
    small, large = answering(9.99), answering(9.99)  # both agree with themselves (items = total)
    with FakeLLMServer(default=lambda r: small(r) if r.api == "ollama" else large(r), api_key=KEY) as server:
        async with worker(server, isolated_settings, unsure_cut(), cascade=("keyword", "llm")) as w:
            receipt = await w.parse_line_items(UNSURE)
        assert [r.api for r in server.requests] == ["ollama"]  # the small model agreed with itself: no large call
    assert (receipt.mode, receipt.escalated, receipt.total) == ("ollama:phi3", ["ollama:phi3"], 9.99)


async def test_the_large_model_is_asked_when_the_small_one_fails_and_not_once_the_budget_is_spent(
    isolated_settings: Settings,
) -> None:
    def reply(request: RecordedRequest) -> Reply:
        if request.api == "ollama":
            return Reply(data="not json at all")
        return answering(9.99, tokens=2_000_000)(request)  # gpt-4o: about $5 a call

    with FakeLLMServer(default=reply, api_key=KEY) as server:
        cascade = ("keyword", "llm", "large")
        async with worker(server, isolated_settings, unsure_cut(), cascade=cascade, budget_usd=1.0) as w:
            first = await w.parse_line_items(UNSURE)
            second = await w.parse_line_items(UNSURE.replace("9.99", "9.98"))
        apis = [r.api for r in server.requests]
    assert first.escalated == ["ollama:phi3", "openai:gpt-4o"] and first.mode == "openai:gpt-4o"
    assert second.mode == "keyword" and second.escalated == ["ollama:phi3", "openai:gpt-4o"]
    assert apis.count("openai") == 1  # the budget was spent by the first call: no second paid call
