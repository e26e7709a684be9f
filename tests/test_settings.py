"""Settings from the environment: the small-model cascade, thresholds, budget and throughput knobs."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings


def test_the_cascade_thresholds_and_budget_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SMALL_MODEL_CASCADE": "keyword, llm,large",
            "SMALL_MODEL_THRESHOLDS": "keyword=0.9,parse=1",
            "SMALL_MODEL_THRESHOLD": "0.7",
            "BUDGET_USD": "0.25",
            "SMALL_MODEL_BATCH_SIZE": "32",
            "SMALL_MODEL_CONCURRENCY": "8",
            "SMALL_MODEL_CACHE": "off",
        },
        dotenv=None,
    )
    assert settings.small_model_cascade == ("keyword", "llm", "large")
    assert settings.small_model_thresholds == {"keyword": 0.9, "parse": 1.0}
    assert (settings.small_model_threshold, settings.budget_usd) == (0.7, 0.25)
    assert (settings.small_model_batch_size, settings.small_model_concurrency, settings.small_model_cache) == (
        32,
        8,
        False,
    )
    assert Settings().small_model_cascade == ("keyword", "embedded", "llm") and Settings().budget_usd is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SMALL_MODEL_CASCADE": "keyword,lm"}, "SMALL_MODEL_CASCADE: .*unknown tier 'lm'"),
        ({"SMALL_MODEL_THRESHOLDS": "keyword:0.9"}, "SMALL_MODEL_THRESHOLDS=.*tier=number"),
        ({"SMALL_MODEL_THRESHOLDS": "keyword=2"}, "SMALL_MODEL_THRESHOLDS: .*between 0 and 1"),
        ({"BUDGET_USD": "-1"}, "BUDGET_USD"),
        ({"SMALL_MODEL_CACHE": "maybe"}, "SMALL_MODEL_CACHE='maybe': expected true or false"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(environ, dotenv=None)
