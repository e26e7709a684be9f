"""The ``code_exec`` tool (kind ``code``): model-written Python, run in a sandbox, result back as JSON.

    {"id": "totals", "tool": "code_exec", "args": {
        "code": "result = {c: round(sum(i['amount'] for i in items if i['category'] == c), 2) for c in cats}",
        "inputs": {"items": "step:categorize.items", "cats": ["food", "beverage"]},
        "limits": {"timeout_s": 5}}}

The step's output is ``{"result", "stdout", "stderr", "isolation"}``. Inside a run, the sandboxes come
from a pool that lives as long as the run (or batch) and is closed with it.
"""

from __future__ import annotations

import base64
import keyword
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.context import report_mode
from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.registry import Tool, ToolAnnotations, ToolKind, ToolSpec
from orchestrator.run_scope import current_scope
from orchestrator.sandbox.limits import LIMIT_DOCS, CodeLimits, LimitError, check_overrides, make_limits
from orchestrator.settings import Settings

if TYPE_CHECKING:  # the launcher and the pool (asyncio, subprocesses) load when a step runs, not for the catalog
    from orchestrator.sandbox.launcher import SandboxConfig, SandboxReply
    from orchestrator.sandbox.pool import SandboxPool

__all__ = ["CodeExecOutput", "CodeExecTool", "sandbox_tools"]

NAME = "code_exec"
MAXIMA_SETTING = "CODE_EXEC_MAX_LIMITS"


class CodeExecOutput(BaseModel):
    """What a ``code_exec`` step returns."""

    result: Any = Field(description="the value of `result`, or what `main()` returned (JSON)")
    stdout: str = Field(description="what the code printed (cut at output_kb)")
    stderr: str = Field(description="what the code wrote to stderr (cut at output_kb)")
    isolation: str = Field(description="bwrap (full isolation) or process (process-level limits only)")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)
    limits: dict[str, Any] | None = None


def _input_schema(defaults: CodeLimits, maxima: CodeLimits) -> dict[str, Any]:
    limit_props = {
        name: {
            "type": "integer" if CodeLimits.model_fields[name].annotation is int else "number",
            "description": f"{doc} (default {getattr(defaults, name):g}, at most {getattr(maxima, name):g})",
        }
        for name, doc in LIMIT_DOCS.items()
    }
    return {
        "type": "object",
        "title": "code_exec_args",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python source. Set `result = ...` (or define `main()` returning it); the value "
                "must be JSON (dicts, lists, str, numbers, bool, None).",
            },
            "inputs": {
                "type": "object",
                "description": "JSON values bound as variables of the same names, e.g. "
                '{"items": "step:categorize.items", "limit": 50}',
                "default": {},
            },
            "files": {
                "type": "array",
                "items": {"type": "string"},
                "description": "paths of files to pass in, read-only; the code reads them as files/<name>",
                "default": [],
            },
            "limits": {
                "type": "object",
                "properties": limit_props,
                "additionalProperties": False,
                "description": "raise or lower this step's limits, within the operator's maxima",
            },
        },
        "required": ["code"],
        "additionalProperties": False,
    }


def _describe(defaults: CodeLimits, maxima: CodeLimits, roots: Sequence[Path], isolation: str) -> str:
    limits = ", ".join(
        f"{name} {getattr(defaults, name):g} (max {getattr(maxima, name):g})"
        for name in ("timeout_s", "cpu_s", "memory_mb", "max_procs", "disk_mb", "output_kb", "result_kb")
    )
    where = ", ".join(str(r) for r in roots)
    return (
        "Run a short Python program in an isolated sandbox and return its result as JSON. Use it for "
        "arithmetic, aggregation and reshaping of data that earlier steps produced (totals per group, tax, "
        "percentages, averages, filtering or flagging against a threshold, sorting, joining or regrouping "
        "lists, converting formats) when no function tool does exactly that job; it is deterministic, cheap "
        "and fast. Pass data with `inputs` (each key becomes a variable, e.g. "
        '{"items": "step:categorize.items"}); set `result = ...` or define `main()`; later steps read '
        "`step:<id>.result`. It can NOT: use third-party packages (Python 3.11 standard library only: json, "
        "math, statistics, datetime, re, collections, itertools, decimal, csv...), reach the network, read "
        "environment variables or secrets, read files other than those passed in `files` (only files under "
        f"{where}; the code opens them as files/<name>), keep state between calls, or call other tools. "
        f"Limits per call, default (max): {limits}; a step may set `limits` up to the max. Code that raises, "
        f"has a syntax error, returns non-JSON or breaks a limit fails the step. Isolation here: {isolation}."
    )


class CodeExecTool:
    """The ``code_exec`` tool: see the module docstring."""

    def __init__(self, settings: Settings):
        try:
            self.defaults, self.maxima = make_limits(
                settings.code_exec_limits,
                settings.code_exec_max_limits,
                defaults_setting="CODE_EXEC_LIMITS",
                maxima_setting=MAXIMA_SETTING,
            )
        except LimitError as exc:
            raise ConfigurationError(str(exc)) from None
        self.settings = settings
        roots = settings.code_exec_file_roots or (os.getcwd(),)
        self.roots = [Path(r).resolve() for r in roots]
        mode = settings.code_exec_isolation
        isolation = {
            "strict": "bubblewrap required (no network, read-only system, only its work folder writable)",
            "process": "process-level limits only",
            "auto": "bubblewrap when installed (no network, read-only system, only its work folder writable), "
            "else process-level limits",
        }[mode]
        self._spec = ToolSpec(
            name=NAME,
            kind=ToolKind.CODE,
            description=_describe(self.defaults, self.maxima, self.roots, isolation),
            input_schema=_input_schema(self.defaults, self.maxima),
            output_schema=CodeExecOutput.model_json_schema(),
            # No effect outside its own throw-away sandbox, and no network: safe to repeat.
            annotations=ToolAnnotations(read_only=True, destructive=False, idempotent=True, open_world=False),
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def __repr__(self) -> str:
        return f"CodeExecTool(isolation={self.settings.code_exec_isolation!r})"

    def check_value(self, arg: str, value: Any) -> str | None:
        """Check a literal argument of a plan step before the run (limits against the maxima, sizes, names)."""
        try:
            if arg == "limits":
                check_overrides(value, defaults=self.defaults, maxima=self.maxima, maxima_setting=MAXIMA_SETTING)
            elif arg == "code":
                self._check_code(value, self.defaults)
            elif arg == "inputs":
                _check_inputs(value)
            elif arg == "files":
                self._load_files(value, self.defaults, read=False)
        except (LimitError, ToolError) as exc:
            return str(exc).removeprefix("code_exec: ")
        return None

    def _check_code(self, code: Any, limits: CodeLimits) -> None:
        if not isinstance(code, str) or not code.strip():
            raise ToolError("code_exec: `code` must be non-empty Python source")
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > limits.code_kb * 1024:
            raise ToolError(f"code_exec: the code is {size // 1024} KiB, above the limit code_kb={limits.code_kb}")

    def _load_files(self, paths: Any, limits: CodeLimits, *, read: bool = True) -> dict[str, str]:
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ToolError("code_exec: `files` must be a list of paths")
        out: dict[str, str] = {}
        total = 0
        for index, raw in enumerate(paths):
            where = f"files[{index}] ({raw})"
            try:
                real = Path(raw).resolve(strict=True)
            except (OSError, RuntimeError):
                if not read:
                    continue  # it may be made by an earlier step; checked again when the step runs
                raise ToolError(f"code_exec: {where}: no such file") from None
            root = next((r for r in self.roots if real.is_relative_to(r)), None)
            if root is None:
                allowed = ", ".join(str(r) for r in self.roots)
                raise ToolError(
                    f"code_exec: {where} is outside the folders code may read ({allowed}; CODE_EXEC_FILE_ROOTS)"
                )
            if any(part.startswith(".") for part in real.relative_to(root).parts):
                raise ToolError(f"code_exec: {where}: hidden files and folders (.env, .git, ...) are never passed in")
            if not real.is_file():
                raise ToolError(f"code_exec: {where} is not a regular file")
            name = Path(raw).name
            if name in out or name.startswith("."):
                raise ToolError(f"code_exec: {where}: a second file named {name!r}, or a hidden name")
            total += real.stat().st_size
            if total > limits.files_mb * 1024 * 1024:
                raise ToolError(f"code_exec: the files passed in are over the limit files_mb={limits.files_mb}")
            out[name] = base64.b64encode(real.read_bytes()).decode("ascii") if read else ""
        return out

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        try:
            parsed = _Args.model_validate(args)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "args"
            raise ToolError(f"code_exec: invalid arguments: {where}: {error['msg']}") from None
        try:
            limits = check_overrides(
                parsed.limits, defaults=self.defaults, maxima=self.maxima, maxima_setting=MAXIMA_SETTING
            )
        except LimitError as exc:
            raise ToolError(f"code_exec: {exc}") from None
        self._check_code(parsed.code, limits)
        _check_inputs(parsed.inputs)
        files = self._load_files(parsed.files, limits)
        from orchestrator.sandbox.pool import run_code

        config = await self._config(limits.disk_mb)
        report_mode(f"code:{config.isolation.value}")
        reply = await run_code(parsed.code, parsed.inputs, limits=limits, files=files, pool=self._pool(config))
        return _output(reply, config)

    async def _config(self, disk_mb: int) -> SandboxConfig:
        from orchestrator.sandbox.pool import resolve_config

        s = self.settings
        config = await resolve_config(
            isolation=s.code_exec_isolation, bwrap=s.code_exec_bwrap, python=s.code_exec_python, disk_mb=disk_mb
        )
        return replace(config, disk_mb=disk_mb)

    def _pool(self, config: SandboxConfig) -> SandboxPool | None:
        scope = current_scope()
        size = self.settings.code_exec_pool_size
        if scope is None or size == 0:
            return None
        from orchestrator.sandbox.pool import SandboxPool

        return scope.resource(("code_exec_pool", config), lambda: SandboxPool(config, size))


def _check_inputs(inputs: Any) -> None:
    if not isinstance(inputs, Mapping):
        raise ToolError("code_exec: `inputs` must be an object of variable names to values")
    for name in inputs:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise ToolError(f"code_exec: inputs.{name}: not a usable Python variable name")


def _output(reply: SandboxReply, config: SandboxConfig) -> dict[str, Any]:
    if not reply.ok:
        error = reply.error
        if error is None:
            raise ToolError("code_exec: the code failed without saying why")
        if error.type in ("SyntaxError", "IndentationError", "TabError"):
            where = f" at line {error.line}" + (f", column {error.column}" if error.column else "")
            text = f"\n    {error.traceback}" if error.traceback else ""
            message = f"code_exec: {error.type.replace('Error', ' error').lower()}{where}: "
            message += error.message.split(": ", 1)[-1] + text
        else:
            at = f" (line {error.line})" if error.line else ""
            message = f"code_exec: {error.message}{at}"
            if error.traceback:
                message += "\n" + error.traceback.rstrip()
        details = {"error": error.model_dump(), "stdout": reply.stdout, "stderr": reply.stderr}
        raise ToolError(message, details=details)
    return {"result": reply.result, "stdout": reply.stdout, "stderr": reply.stderr, "isolation": config.isolation.value}


def sandbox_tools(settings: Settings) -> list[Tool]:
    """The sandbox's tools for a registry: ``code_exec``, configured by `settings`."""
    return [CodeExecTool(settings)]
