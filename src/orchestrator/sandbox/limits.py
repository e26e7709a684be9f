"""What sandboxed code may use: the limits of one ``code_exec`` call, and how overrides are checked.

Three layers, each within the one above it:

1. the operator's maxima (``CODE_EXEC_MAX_LIMITS``), which nothing can exceed;
2. the run's defaults (``CODE_EXEC_LIMITS``, or :func:`~orchestrator.settings.use_settings` in Python),
   checked against the maxima when the tool is made;
3. a step's ``limits`` argument, checked against the maxima when the plan is validated (a literal) or
   when the step runs (a reference).

A limit above its maximum is an error that names the limit, the value, the maximum and the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAXIMA",
    "LIMIT_DOCS",
    "CodeLimits",
    "LimitError",
    "check_overrides",
    "make_limits",
]


class CodeLimits(BaseModel):
    """The resources one sandboxed call may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=10.0, gt=0, le=3600, description="wall-clock seconds; then the sandbox is killed")
    cpu_s: int = Field(default=10, ge=1, le=3600, description="CPU seconds (RLIMIT_CPU)")
    memory_mb: int = Field(default=256, ge=32, le=65536, description="address space in MiB (RLIMIT_AS)")
    max_procs: int = Field(default=8, ge=1, le=4096, description="processes and threads at once (RLIMIT_NPROC)")
    open_files: int = Field(default=64, ge=16, le=65536, description="open file descriptors (RLIMIT_NOFILE)")
    disk_mb: int = Field(
        default=32, ge=1, le=65536, description="work folder size and largest file in MiB (tmpfs size, RLIMIT_FSIZE)"
    )
    output_kb: int = Field(default=64, ge=1, le=65536, description="stdout and stderr kept, each, in KiB")
    result_kb: int = Field(default=1024, ge=1, le=262144, description="largest JSON result in KiB")
    files_mb: int = Field(default=16, ge=0, le=4096, description="total size of the files passed in, in MiB")
    code_kb: int = Field(default=64, ge=1, le=4096, description="largest source code in KiB")


LIMIT_DOCS: dict[str, str] = {name: field.description or name for name, field in CodeLimits.model_fields.items()}
"""Each limit's meaning, for the README, the catalog and error messages."""

DEFAULT_LIMITS = CodeLimits()
"""The defaults of a call when ``CODE_EXEC_LIMITS`` sets none."""

DEFAULT_MAXIMA = CodeLimits(
    timeout_s=60.0,
    cpu_s=60,
    memory_mb=2048,
    max_procs=64,
    open_files=1024,
    disk_mb=512,
    output_kb=1024,
    result_kb=16384,
    files_mb=256,
    code_kb=512,
)
"""The operator's maxima when ``CODE_EXEC_MAX_LIMITS`` sets none."""


class LimitError(ValueError):
    """A limit override that is unknown, malformed or above the operator's maximum."""


def _build(values: Mapping[str, Any], *, base: CodeLimits, where: str) -> CodeLimits:
    unknown = [name for name in values if name not in LIMIT_DOCS]
    if unknown:
        raise LimitError(f"{where}: unknown limit {unknown[0]!r}; limits are {', '.join(LIMIT_DOCS)}")
    merged = base.model_dump() | dict(values)
    for name, value in merged.items():
        if isinstance(value, float) and CodeLimits.model_fields[name].annotation is int and value.is_integer():
            merged[name] = int(value)
    try:
        return CodeLimits.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(p) for p in error["loc"])
        label = f"limits.{name}" if where == "limits" else f"{where}: {name}"
        raise LimitError(f"{label}: {error['msg']}") from None


def make_limits(
    defaults: Mapping[str, Any], maxima: Mapping[str, Any], *, defaults_setting: str, maxima_setting: str
) -> tuple[CodeLimits, CodeLimits]:
    """The run's (defaults, maxima) from the settings: defaults above a maximum are an error naming both."""
    top = _build(maxima, base=DEFAULT_MAXIMA, where=maxima_setting)
    # A default the operator did not set is lowered to a smaller maximum; one the operator did set must fit.
    base = CodeLimits.model_validate(
        {
            name: min(value, getattr(top, name)) if name not in defaults else value
            for name, value in DEFAULT_LIMITS.model_dump().items()
        }
    )
    chosen = _build(defaults, base=base, where=defaults_setting)
    over = _over(chosen, top)
    if over:
        name, value, limit = over
        raise LimitError(
            f"{defaults_setting}: {name}={value:g} is above the operator's maximum {limit:g} ({maxima_setting})"
        )
    return chosen, top


def _over(limits: CodeLimits, maxima: CodeLimits) -> tuple[str, float, float] | None:
    for name in LIMIT_DOCS:
        value, limit = getattr(limits, name), getattr(maxima, name)
        if value > limit:
            return name, float(value), float(limit)
    return None


def check_overrides(
    overrides: Any, *, defaults: CodeLimits, maxima: CodeLimits, maxima_setting: str = "CODE_EXEC_MAX_LIMITS"
) -> CodeLimits:
    """A step's limits: `defaults` with `overrides` applied, each within `maxima`.

    Raises:
        LimitError: `overrides` is not an object, names an unknown limit, has a bad value, or goes over a
            maximum (the message names the limit, the value, the maximum and `maxima_setting`).
    """
    if overrides is None:
        return defaults
    if not isinstance(overrides, Mapping):
        raise LimitError(f"limits must be an object like {{'timeout_s': 20}}, got {type(overrides).__name__}")
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            if name in LIMIT_DOCS:
                raise LimitError(f"limits.{name}: expected a number, got {value!r}")
    limits = _build(overrides, base=defaults, where="limits")
    over = _over(limits, maxima)
    if over:
        name, value, limit = over
        raise LimitError(
            f"limits.{name}={value:g} is above the operator's maximum {limit:g} "
            f"(set by {maxima_setting}; {LIMIT_DOCS[name]})"
        )
    return limits
