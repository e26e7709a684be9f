"""The Ray settings read from the environment, and their errors."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings


def test_ray_settings_come_from_the_environment() -> None:
    env = {
        "RAY_ADDRESS": "ray://head:10001",
        "RAY_WORKERS": "8",
        "RAY_DOCUMENT_RETRIES": "3",
        "RAY_RUNTIME_ENV": '{"pip": ["orchestrator[ocr]"], "env_vars": {"A": "1"}}',
        "RAY_TIMEOUT_S": "30",
    }
    s = Settings.from_env(env, dotenv=None)
    assert (s.ray_address, s.ray_workers, s.ray_document_retries, s.ray_timeout_s) == ("ray://head:10001", 8, 3, 30)
    assert s.ray_runtime_env == {"pip": ["orchestrator[ocr]"], "env_vars": {"A": "1"}}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAY_RUNTIME_ENV": "{pip: 1"}, "RAY_RUNTIME_ENV: not JSON"),
        ({"RAY_RUNTIME_ENV": '["pip"]'}, "RAY_RUNTIME_ENV: expected a JSON object, got list"),
        ({"RAY_WORKERS": "0"}, "RAY_WORKERS"),
        ({"RAY_DOCUMENT_RETRIES": "99"}, "RAY_DOCUMENT_RETRIES"),
    ],
)
def test_bad_ray_settings_are_configuration_errors_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env, dotenv=None)
