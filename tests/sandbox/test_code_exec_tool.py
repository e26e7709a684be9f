"""The code_exec tool inside plans: arguments, errors, limits within the operator's maxima, files, the pool."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import ConfigurationError, PlanValidationError
from orchestrator.executor import execute_plan
from orchestrator.sandbox.launcher import SandboxConfig
from orchestrator.sandbox.limits import DEFAULT_MAXIMA, LIMIT_DOCS, CodeLimits, LimitError, check_overrides
from orchestrator.sandbox.tool import CodeExecTool
from orchestrator.settings import Settings, current_settings, use_settings
from orchestrator.toolbox import default_registry

from .conftest import sandbox_uid_processes

SUM_BY = """
from collections import Counter
c = Counter()
for i in items:
    c[i['category']] += i['amount']
result = dict(c)
"""


def plan(*steps: dict[str, Any], output: str | None = None) -> dict[str, Any]:
    return {"goal": "code", "steps": list(steps), "output": output or f"step:{steps[-1]['id']}"}


def run(data: dict[str, Any], **overrides: Any) -> Any:
    async def go() -> Any:
        with use_settings(current_settings(), **overrides):
            return await execute_plan(data, registry=default_registry(plugins=False))

    return asyncio.run(go())


def test_code_exec_is_in_the_catalog_with_guidance_and_limits() -> None:
    spec = next(s for s in default_registry(plugins=False).catalog() if s.name == "code_exec")
    assert spec.kind.value == "code"
    for words in (
        "arithmetic",
        "aggregation",
        "reshaping",
        "standard library only",
        "network",
        "timeout_s 10 (max 60)",
    ):
        assert words in spec.description
    assert spec.input_schema["required"] == ["code"]
    assert set(spec.input_schema["properties"]["limits"]["properties"]) == set(LIMIT_DOCS)
    assert set(spec.output_schema["properties"]) == {"result", "stdout", "stderr", "isolation"}


def test_a_step_gets_earlier_outputs_as_variables_and_later_steps_read_its_result(bwrap_config: SandboxConfig) -> None:
    result = run(
        plan(
            {
                "id": "items",
                "tool": "code_exec",
                "args": {
                    "code": "result = [{'category': c, 'amount': a} for c, a in pairs]",
                    "inputs": {"pairs": [["food", 3.5], ["food", 1.5], ["fuel", 40]]},
                },
            },
            {
                "id": "totals",
                "tool": "code_exec",
                "args": {
                    "code": SUM_BY,
                    "inputs": {"items": "step:items.result"},
                },
            },
            {"id": "check", "tool": "calculate_totals", "args": {"items": "step:items.result"}},
            output="step:totals.result",
        ),
    )
    assert result.ok, result.steps
    assert result.output == {"food": 5.0, "fuel": 40}
    assert result.steps["totals"].modes == ("code:bwrap",)
    assert sandbox_uid_processes(bwrap_config) == []  # the run's pool was closed with the run


def test_a_syntax_error_fails_the_step_with_its_line() -> None:
    result = run(plan({"id": "bad", "tool": "code_exec", "args": {"code": "x = 1\ny = (2,\n"}}))
    step = result.steps["bad"]
    assert step.status == "failed"
    assert step.error is not None and step.error.startswith("code_exec: syntax error at line 2")


def test_an_exception_comes_back_with_a_trimmed_traceback_of_the_code_only() -> None:
    code = "def ratio(a, b):\n    return a / b\n\nresult = ratio(1, 0)"
    result = run(plan({"id": "div", "tool": "code_exec", "args": {"code": code}}))
    error = result.steps["div"].error or ""
    assert error.startswith("code_exec: ZeroDivisionError: division by zero (line 2)")
    assert 'File "<code>", line 4' in error and 'File "<code>", line 2, in ratio' in error
    assert "_bootstrap" not in error and "orchestrator" not in error


def test_a_result_that_is_not_json_is_a_clear_error() -> None:
    result = run(plan({"id": "obj", "tool": "code_exec", "args": {"code": "result = {1, 2}"}}))
    assert "the result is not JSON" in (result.steps["obj"].error or "")


def test_limits_above_the_maximum_are_refused_before_the_run_naming_the_limit_and_setting() -> None:
    data = plan({"id": "slow", "tool": "code_exec", "args": {"code": "result = 1", "limits": {"timeout_s": 61}}})
    with pytest.raises(PlanValidationError) as info:
        run(data)
    message = str(info.value)
    assert "step 'slow' args.limits" in message
    assert "limits.timeout_s=61 is above the operator's maximum 60" in message and "CODE_EXEC_MAX_LIMITS" in message


def test_the_operator_maxima_and_run_defaults_come_from_the_settings() -> None:
    settings = Settings(code_exec_limits={"timeout_s": 3}, code_exec_max_limits={"timeout_s": 5, "memory_mb": 128})
    tool = CodeExecTool(settings)
    assert tool.defaults.timeout_s == 3 and tool.maxima.timeout_s == 5
    assert tool.defaults.memory_mb == 128  # a default above a lowered maximum follows it down
    assert tool.check_value("limits", {"timeout_s": 5}) is None
    assert "maximum 5" in (tool.check_value("limits", {"timeout_s": 6}) or "")
    with pytest.raises(ConfigurationError, match=r"CODE_EXEC_LIMITS: timeout_s=9 is above the operator's maximum 5"):
        CodeExecTool(Settings(code_exec_limits={"timeout_s": 9}, code_exec_max_limits={"timeout_s": 5}))


def test_limit_settings_are_parsed_from_the_environment_with_clear_errors() -> None:
    settings = Settings.from_env(
        {"CODE_EXEC_LIMITS": "timeout_s=20, memory_mb=512", "CODE_EXEC_ISOLATION": "strict"}, dotenv=None
    )
    assert settings.code_exec_limits == {"timeout_s": 20.0, "memory_mb": 512.0}
    with pytest.raises(ConfigurationError, match="CODE_EXEC_MAX_LIMITS=.*expected name=number pairs"):
        Settings.from_env({"CODE_EXEC_MAX_LIMITS": "time"}, dotenv=None)
    unknown = Settings.from_env({"CODE_EXEC_MAX_LIMITS": "time=3"}, dotenv=None)
    with pytest.raises(ConfigurationError, match="CODE_EXEC_MAX_LIMITS: unknown limit 'time'"):
        CodeExecTool(unknown)  # the names are the sandbox's, checked when the tool is made
    with pytest.raises(ConfigurationError, match="CODE_EXEC_ISOLATION"):
        Settings.from_env({"CODE_EXEC_ISOLATION": "maybe"}, dotenv=None)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(LIMIT_DOCS)), st.integers(min_value=1, max_value=10**6), max_size=5))
def test_overrides_never_exceed_the_maxima(overrides: dict[str, int]) -> None:
    try:
        limits = check_overrides(overrides, defaults=CodeLimits(), maxima=DEFAULT_MAXIMA)
    except LimitError as exc:
        assert any(f"limits.{name}" in str(exc) for name in overrides)
        return
    for name in LIMIT_DOCS:
        assert getattr(limits, name) <= getattr(DEFAULT_MAXIMA, name)
        if name in overrides:
            assert getattr(limits, name) == overrides[name]


def test_a_step_may_set_its_own_limits(bwrap_config: SandboxConfig) -> None:
    result = run(
        plan(
            {
                "id": "t",
                "tool": "code_exec",
                "args": {"code": "while True:\n    pass", "limits": {"timeout_s": 1, "cpu_s": 30}},
            }
        )
    )
    assert "timed out after 1s (limit timeout_s)" in (result.steps["t"].error or "")


@pytest.fixture
def in_tmp(tmp_path: Path) -> Path:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def test_files_under_the_allowed_folders_are_passed_in_read_only(in_tmp: Path) -> None:
    (in_tmp / "limits.json").write_text('{"meals": 50}')
    code = "import json\nresult = json.load(open('files/limits.json'))['meals']"
    result = run(plan({"id": "f", "tool": "code_exec", "args": {"code": code, "files": ["limits.json"]}}))
    assert result.ok and result.output["result"] == 50


@pytest.mark.parametrize("name", ["outside", "hidden", "link"])
def test_files_outside_the_allowed_folders_or_hidden_are_refused(
    in_tmp: Path, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    secret.write_text("s3cret")
    (in_tmp / ".env").write_text("OPENAI_API_KEY=sk-x")
    (in_tmp / "innocent.txt").symlink_to(secret)
    path = {"outside": str(secret), "hidden": ".env", "link": "innocent.txt"}[name]
    expected = "hidden files" if name == "hidden" else "outside the folders code may read"
    code = "result = open('files/x').read()"
    # a literal path is refused when the plan is validated ...
    with pytest.raises(PlanValidationError, match=expected):
        run(plan({"id": "f", "tool": "code_exec", "args": {"code": code, "files": [path]}}))
    # ... and a path that arrives by reference when the step runs
    data = plan(
        {"id": "p", "tool": "code_exec", "args": {"code": "result = path", "inputs": {"path": path}}},
        {"id": "f", "tool": "code_exec", "args": {"code": code, "files": ["step:p.result"]}},
    )
    result = run(data)
    assert result.steps["f"].status == "failed" and expected in (result.steps["f"].error or "")
    assert "s3cret" not in str(result.output)


def test_strict_isolation_without_bwrap_fails_the_step_with_the_remedy() -> None:
    from orchestrator.sandbox.pool import reset_probes

    reset_probes()
    try:
        result = run(
            plan({"id": "s", "tool": "code_exec", "args": {"code": "result = 1"}}),
            code_exec_isolation="strict",
            code_exec_bwrap="/nonexistent/bwrap",
        )
    finally:
        reset_probes()
    error = result.steps["s"].error or ""
    assert "CODE_EXEC_ISOLATION=strict" in error and "install bubblewrap" in error


def test_the_pool_hands_each_sandbox_out_once(bwrap_config: SandboxConfig) -> None:
    from orchestrator.sandbox.pool import SandboxPool, run_code

    async def go() -> list[int]:
        pool = SandboxPool(bwrap_config, size=2)
        await pool.warm()
        try:
            replies = [await run_code("import os\nresult = os.getuid()", pool=pool) for _ in range(4)]
        finally:
            await pool.aclose()
        return [r.result for r in replies]

    uids = asyncio.run(go())
    assert len(set(uids)) == 4  # a new sandbox (and uid) per call
    assert sandbox_uid_processes(bwrap_config) == []
