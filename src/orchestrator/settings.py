"""Configuration: the one place environment variables (and `.env`) are read.

Explicit arguments always win over settings; settings come from the environment, then from a `.env`
file in the working directory. Library code asks :func:`current_settings`; tests and embedding
applications pin their own with :func:`use_settings`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Settings(BaseModel):
    """Everything configurable from the environment. Field names are the lower-cased variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # small models (design: USE_SMALL_MODEL, SMALL_MODEL_BACKEND, WORKER_MODEL, OLLAMA_API_URL)
    use_small_model: bool = False
    small_model_backend: str | None = Field(
        default=None, description="ollama, transformers, azure, openai_compatible, embedded"
    )
    worker_model: str = "phi3"
    ollama_api_url: str = "http://localhost:11434"
    small_model_base_url: str | None = Field(default=None, description="OpenAI-compatible server for small models")
    small_model_api_key: str | None = None
    azure_ai_endpoint: str | None = None
    azure_ai_key: str | None = None

    # planner (design: PLANNER_MODEL)
    planner_provider: str | None = None
    planner_model: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: str | None = None
    azure_openai_deployment: str | None = None
    openai_api_version: str | None = None

    # OCR
    ocr_backend: str = "rapidocr"
    azure_vision_endpoint: str | None = None
    azure_vision_key: str | None = None

    # storage
    orchestrator_home: Path = Field(default=Path(".orchestrator"), description="cache and run store folder")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")) -> Settings:
        """Read settings from `environ` (default: os.environ) over the values in a `.env` file."""
        values: dict[str, Any] = {}
        if dotenv is not None and dotenv.is_file():
            from dotenv import dotenv_values

            values.update({k.lower(): v for k, v in dotenv_values(dotenv).items() if v is not None})
        env = os.environ if environ is None else environ
        names = set(cls.model_fields)
        values.update({k.lower(): v for k, v in env.items() if k.lower() in names})
        if "use_small_model" in values:
            values["use_small_model"] = _parse_bool("USE_SMALL_MODEL", values["use_small_model"])
        values = {k: v for k, v in values.items() if k in names and v != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]).upper()
            raise ConfigurationError(f"environment variable {name}: {error['msg']}") from exc


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"environment variable {name}={value!r}: expected true or false")


_pinned: ContextVar[Settings | None] = ContextVar("orchestrator_settings", default=None)


def current_settings() -> Settings:
    """The settings in force: pinned by :func:`use_settings`, else read from the environment now."""
    pinned = _pinned.get()
    return pinned if pinned is not None else Settings.from_env()


@contextmanager
def use_settings(settings: Settings | None = None, **overrides: Any) -> Iterator[Settings]:
    """Pin settings (plus overrides) for the code run inside the block, including tasks it starts."""
    base = settings if settings is not None else current_settings()
    pinned = base.model_copy(update=overrides) if overrides else base
    token = _pinned.set(pinned)
    try:
        yield pinned
    finally:
        _pinned.reset(token)
