"""The price table: dated ids, local models, overrides, and unknown models that cost 0 without crashing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.providers import Price, cost_usd, load_prices, price_for


def test_gpt_4o_costs_its_list_price() -> None:
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(2.50 + 10.00)
    assert cost_usd("gpt-4o", 2000, 500) == pytest.approx((2000 * 2.50 + 500 * 10.00) / 1e6)


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("openai/gpt-4o", "gpt-4o"),
    ],
)
def test_dated_and_routed_ids_are_priced_by_their_longest_known_prefix(model: str, priced_as: str) -> None:
    assert price_for(model) == price_for(priced_as)
    assert price_for(model) is not None


def test_local_models_are_free_and_known() -> None:
    assert price_for("ollama/phi3") == Price(0.0, 0.0)
    assert cost_usd("ollama/llama3.1:8b", 10_000, 10_000) == 0.0


def test_an_unknown_model_costs_nothing_and_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="orchestrator.providers.pricing"):
        assert cost_usd("mystery-model-7b", 1000, 1000) == 0.0
        assert cost_usd("mystery-model-7b", 1000, 1000) == 0.0
    assert price_for("mystery-model-7b") is None
    warnings = [r for r in caplog.records if "mystery-model-7b" in r.getMessage()]
    assert len(warnings) == 1


def test_a_prefix_must_end_at_a_separator() -> None:
    assert price_for("gpt-4omega") is None


def test_overrides_from_a_mapping_win_over_the_table() -> None:
    overrides = {"gpt-4o": {"input": 1.0, "output": 2.0}, "my-vllm-model": (0.5, 0.5)}
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000, overrides) == pytest.approx(3.0)
    assert cost_usd("my-vllm-model", 2_000_000, 0, overrides) == pytest.approx(1.0)
    assert price_for("gpt-4o", {"gpt-4o": Price(9, 9)}) == Price(9, 9)


def test_overrides_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"phi3-azure": {"input": 0.13, "output": 0.52}}), encoding="utf-8")
    assert load_prices(path) == {"phi3-azure": Price(0.13, 0.52)}
    assert cost_usd("phi3-azure", 1_000_000, 1_000_000, path) == pytest.approx(0.65)
    assert cost_usd("phi3-azure", 1_000_000, 1_000_000, str(path)) == pytest.approx(0.65)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"m": {"input": 1}}', "expected {'input'"),
    ],
)
def test_a_malformed_price_file_is_a_configuration_error_naming_the_file(
    tmp_path: Path, content: str, needle: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="prices.json") as caught:
        load_prices(path)
    assert needle in str(caught.value)


def test_a_missing_price_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read it"):
        load_prices(tmp_path / "absent.json")
