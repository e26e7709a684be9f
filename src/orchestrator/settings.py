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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.errors import ConfigurationError

CASCADE_TIERS: tuple[str, ...] = ("keyword", "embedded", "llm", "large")
"""The cascade tiers a setting may name: keyword rules, the embedded MiniLM, the configured small LLM, the
large (planner) model."""

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
    azure_ai_endpoint: str | None = Field(default=None, description="Azure AI model inference endpoint")
    azure_ai_key: str | None = None
    azure_ai_api_version: str | None = None

    # the small-model cascade, budget and throughput (issue 5)
    small_model_cascade: tuple[str, ...] = Field(
        default=("keyword", "embedded", "llm"),
        description="tiers asked in order, cheapest first: keyword, embedded, llm (the configured back-end), large",
    )
    small_model_threshold: float = Field(default=0.8, ge=0, le=1, description="confidence at which a tier answers")
    small_model_thresholds: dict[str, float] = Field(
        default_factory=dict, description="per tier (and 'parse'), e.g. SMALL_MODEL_THRESHOLDS=keyword=0.9,embedded=0.7"
    )
    budget_usd: float | None = Field(default=None, ge=0, description="run-wide model spend; then nothing escalates")
    small_model_batch_size: int = Field(default=16, ge=1, le=200, description="items per model call")
    small_model_concurrency: int = Field(default=4, ge=1, le=64, description="model calls in flight at once")
    small_model_gather_ms: float = Field(
        default=10.0, ge=0, le=1000, description="a label request waits this long for others to share its calls"
    )
    small_model_timeout_s: float = Field(default=30.0, gt=0, description="per model call")
    small_model_max_retries: int = Field(default=1, ge=0, le=5, description="retries of a failed call")
    small_model_cache: bool = Field(default=True, description="cache answers in SQLite under ORCHESTRATOR_HOME")

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
    ocr_pdf_max_pages: int = Field(default=50, ge=1, description="PDF pages read per document; the rest are left out")
    ocr_onnx_threads: int = Field(
        default=1, ge=1, le=64, description="rapidocr: threads per ONNX session (documents run in parallel instead)"
    )
    ocr_rec_model: str = Field(
        default="ppocrv6",
        min_length=1,
        description="rapidocr: recognition model: ppocrv6 (PP-OCRv6 small, from the rapidocr package), ppocrv4 "
        "(rapidocr-onnxruntime's own) or the path of a PaddleOCR recognition .onnx that lists its characters",
    )
    ocr_rec_batch: int = Field(
        default=6, ge=1, le=64, description="rapidocr: text boxes per recognition call (1 is faster, reads other text)"
    )
    azure_vision_endpoint: str | None = None
    azure_vision_key: str | None = None

    # Ray (--executor ray)
    ray_address: str | None = Field(
        default=None, description="a Ray cluster (host:port, ray://host:10001 or auto); unset: start a local one"
    )
    ray_workers: int | None = Field(default=None, ge=1, le=4096, description="document workers (default: CPUs)")
    ray_document_retries: int = Field(default=2, ge=0, le=10, description="re-runs of a document whose worker died")
    ray_runtime_env: dict[str, Any] | None = Field(
        default=None, description='Ray runtime_env as JSON, e.g. {"pip": ["orchestrator[ocr]"]}'
    )
    ray_timeout_s: float = Field(default=60.0, gt=0, le=3600, description="connecting, and workers starting")

    # files: confinement and size caps (see orchestrator.files)
    allowed_paths: tuple[str, ...] = Field(
        default=(), description="folders tools may read besides the working directory and the run's input folders"
    )
    file_access: Literal["confined", "unrestricted"] = Field(
        default="confined", description="unrestricted: tools may read any path a plan names"
    )
    max_document_bytes: int = Field(default=20_000_000, ge=1, description="largest file a tool reads")
    max_text_chars: int = Field(default=1_000_000, ge=1, description="longest text a document may hold")

    # sandboxed code execution: the code_exec tool (issue 11)
    code_exec_isolation: str = Field(
        default="auto", description="auto (bwrap, else process-level with a warning), strict (bwrap or refuse), process"
    )
    code_exec_bwrap: str = Field(default="bwrap", description="the bubblewrap binary (a name on PATH or a path)")
    code_exec_python: str | None = Field(default=None, description="interpreter in the sandbox (default: this one)")
    code_exec_limits: dict[str, float] = Field(
        default_factory=dict, description="this run's default limits, e.g. CODE_EXEC_LIMITS=timeout_s=20,memory_mb=512"
    )
    code_exec_max_limits: dict[str, float] = Field(
        default_factory=dict, description="the operator's maxima, which no run or step can exceed"
    )
    code_exec_pool_size: int = Field(default=2, ge=0, le=32, description="sandboxes started ahead of time (0: none)")
    code_exec_file_roots: tuple[str, ...] = Field(
        default=(), description="folders whose files a step may pass in (default: the working directory)"
    )

    # limits for plans a model wrote (plan files have their own, larger ones: orchestrator.plan.limits)
    model_plan_max_steps: int = Field(default=200, ge=1, description="steps in a model-written plan")
    model_plan_max_for_each: int = Field(default=1_000, ge=1, description="for_each elements of one step")
    model_plan_max_for_each_total: int = Field(default=10_000, ge=1, description="for_each elements in one run")
    model_plan_max_model_steps: int = Field(default=20, ge=0, description="steps of kind small_model or large_model")
    model_plan_max_model_calls: int = Field(default=500, ge=0, description="calls of model-kind tools in one run")

    # storage
    orchestrator_home: Path = Field(
        default_factory=lambda: Path.home() / ".orchestrator", description="cache, plan library and run store folder"
    )
    orchestrator_store: Path | None = Field(
        default=None, description="the run store's SQLite file (default: <ORCHESTRATOR_HOME>/runs.sqlite)"
    )
    store_tool_cache: bool = Field(default=True, description="reuse recorded results of deterministic tools")
    store_sync: str = Field(default="normal", pattern="^(normal|full)$", description="SQLite synchronous level")
    store_busy_timeout_s: float = Field(default=10.0, gt=0, le=3600, description="wait for another writer's lock")

    @property
    def store_path(self) -> Path:
        """The run store's database file."""
        return self.orchestrator_store or self.orchestrator_home / "runs.sqlite"

    @field_validator("orchestrator_home", "orchestrator_store")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    # MCP (issue 10)
    orchestrator_mcp_config: Path | None = Field(
        default=None, description="mcp_servers.json: MCP servers whose tools plans may call (or --mcp-config)"
    )
    orchestrator_mcp_token: str | None = Field(
        default=None, description="bearer token: required by `mcp serve --http`, sent to WORKERS_MCP_URL"
    )
    workers_transport: Literal["local", "mcp"] = Field(
        default="local", description="mcp: the built-in worker tools run out of process, behind `mcp serve`"
    )
    workers_mcp_url: str | None = Field(
        default=None, description="with WORKERS_TRANSPORT=mcp: reach the workers here over streamable HTTP"
    )

    @field_validator("small_model_cascade")
    @classmethod
    def _known_tiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [tier for tier in value if tier not in CASCADE_TIERS]
        if unknown:
            raise ValueError(f"unknown tier {unknown[0]!r}; tiers are {', '.join(CASCADE_TIERS)}")
        if not value:
            raise ValueError(f"needs at least one tier of {', '.join(CASCADE_TIERS)}")
        return value

    @field_validator("small_model_thresholds")
    @classmethod
    def _thresholds_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [name for name, threshold in value.items() if not 0.0 <= threshold <= 1.0]
        if bad:
            raise ValueError(f"threshold for {bad[0]!r} must be between 0 and 1")
        return value

    @field_validator("code_exec_isolation")
    @classmethod
    def _known_isolation(cls, value: str) -> str:
        if value not in ("auto", "strict", "process"):
            raise ValueError(f"{value!r} is not one of auto, strict, process")
        return value

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
        for name in ("use_small_model", "small_model_cache", "store_tool_cache"):
            if name in values:
                values[name] = _parse_bool(name.upper(), values[name])
        cascade = values.get("small_model_cascade")
        if isinstance(cascade, str):
            values["small_model_cascade"] = tuple(t.strip() for t in cascade.split(",") if t.strip())
        if isinstance(values.get("ray_runtime_env"), str) and values["ray_runtime_env"].strip():
            values["ray_runtime_env"] = _parse_json_object("RAY_RUNTIME_ENV", values["ray_runtime_env"])
        allowed = values.get("allowed_paths")
        if isinstance(allowed, str):
            values["allowed_paths"] = tuple(
                p.strip() for p in allowed.replace(",", os.pathsep).split(os.pathsep) if p.strip()
            )
        if isinstance(values.get("file_access"), str):
            values["file_access"] = values["file_access"].strip().lower()
        if isinstance(values.get("small_model_thresholds"), str):
            values["small_model_thresholds"] = _parse_thresholds(values["small_model_thresholds"])
        for name in ("code_exec_limits", "code_exec_max_limits"):
            if isinstance(values.get(name), str):
                values[name] = _parse_limits(name.upper(), values[name])
        if isinstance(values.get("code_exec_file_roots"), str):
            values["code_exec_file_roots"] = tuple(p for p in values["code_exec_file_roots"].split(os.pathsep) if p)
        values = {k: v for k, v in values.items() if k in names and v != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]).upper()
            given = values.get(str(error["loc"][0]))
            shown = f"={given!r}" if isinstance(given, str) else ""
            raise ConfigurationError(f"environment variable {name}{shown}: {error['msg']}") from exc


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as environment variables that :meth:`Settings.from_env` reads back (unset ones left out).

    A child process started with them (an MCP worker server, say) works with the same settings.
    """
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple | list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = ",".join(f"{k}={v}" for k, v in value.items())
        else:
            text = str(value)
        if text:
            env[name.upper()] = text
    return env


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"environment variable {name}={value!r}: expected true or false")


def _parse_json_object(name: str, text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"environment variable {name}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"environment variable {name}: expected a JSON object, got {type(value).__name__}")
    return value


def _parse_limits(name: str, text: str) -> dict[str, float]:
    """``timeout_s=20,memory_mb=512`` -> {"timeout_s": 20.0, ...}; the names are checked by the sandbox."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError(part)
            out[key.strip()] = float(value)
        except ValueError:
            raise ConfigurationError(
                f"environment variable {name}={text!r}: expected name=number pairs, e.g. timeout_s=20,memory_mb=512"
            ) from None
    return out


def _parse_thresholds(text: str) -> dict[str, float]:
    """``keyword=0.9,embedded=0.7`` -> {"keyword": 0.9, "embedded": 0.7}."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError(part)
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigurationError(
                f"environment variable SMALL_MODEL_THRESHOLDS={text!r}: expected tier=number pairs, "
                "e.g. keyword=0.9,embedded=0.7"
            ) from None
    return out


_pinned: ContextVar[Settings | None] = ContextVar("orchestrator_settings", default=None)


def current_settings() -> Settings:
    """The settings in force: pinned by :func:`use_settings`, else read from the environment now."""
    pinned = _pinned.get()
    return pinned if pinned is not None else Settings.from_env()


def pin_settings(settings: Settings) -> None:
    """Pin `settings` for the rest of this context (a CLI command applying its options); no undo."""
    _pinned.set(settings)


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
