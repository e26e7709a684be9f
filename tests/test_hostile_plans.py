"""Hostile plans, through the real paths: the `orchestrator` command (a subprocess) and `execute_plan`.

Each case asserts the exit code, that the one message names the step and field, that no traceback
shows, and what ran and what did not (a plugin tool writes a marker file when it runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import PlanValidationError
from orchestrator.executor import execute_plan
from orchestrator.plan.limits import ModelPlanLimits
from orchestrator.plan.validate import validate_plan
from orchestrator.registry import ToolRegistry

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field


def register_tools(registry):
    @registry.tool
    async def record(note: str, path: str = "") -> str:
        """Append a note to the marker file: proof that the step ran."""
        with open(os.environ["HOSTILE_MARKER"], "a") as out:
            out.write(note + "\\n")
        return note

    @registry.tool
    async def echo(value=None):
        """Give back what it is given (untyped: nothing to check a reference against)."""
        return value

    @registry.tool
    async def odd_text() -> dict:
        """Text a terminal and a JSON writer must survive."""
        return {"surrogate": "a\\ud800b", "escape": "\\x1b[2J", "bidi": "\\u202etxt", "nul": "x\\x00y"}

    @registry.tool
    async def open_named(name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]) -> str:
        """Open a file by a bare name (no folders)."""
        return name
'''


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "hostileplug").mkdir()
    (tmp_path / "hostileplug" / "__init__.py").write_text(PLUGIN)
    meta = tmp_path / "hostileplug-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: hostileplug\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[orchestrator.tools]\nhostileplug = hostileplug\n")
    return tmp_path


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(home), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, HOSTILE_MARKER=str(home / "ran.txt"))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        encoding="utf-8",
        errors="backslashreplace",
    )


def ran(home: Path) -> list[str]:
    marker = home / "ran.txt"
    return marker.read_text().split() if marker.exists() else []


def plan_with(*steps: dict[str, Any]) -> dict[str, Any]:
    """A first step that records 'first' and would run at once, then the hostile steps."""
    return {"goal": "hostile", "steps": [{"id": "first", "tool": "record", "args": {"note": "first"}}, *steps]}


def refused(
    home: Path, text: str, *, step: str | None = None, field: str | None = None, commands: tuple[str, ...] = ("run",)
) -> str:
    """Run the plan text with `run` (and others): exit 2, one clear message, nothing ran. Returns stderr."""
    path = home / "plan.json"
    path.write_text(text, encoding="utf-8")
    for command in commands:
        proc = cli(home, command, str(path))
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        if step is not None:
            assert f"step {step!r}" in proc.stderr, proc.stderr
        if field is not None:
            assert field in proc.stderr, proc.stderr
    assert ran(home) == []
    return proc.stderr


HOSTILE_TEXT = [
    pytest.param('{"note": "x", "n": 1e999}', "args.n", "not finite", id="1e999"),
    pytest.param('{"note": "x", "n": -Infinity}', "args.n", "not finite", id="-Infinity"),
    pytest.param('{"note": "x", "n": NaN}', "args.n", "not finite", id="NaN"),
    pytest.param('{"note": "x", "n": ' + "9" * 5000 + "}", "args.n", "5,000 digits", id="5000-digit-int"),
    pytest.param('{"note": "x", "n": 18446744073709551616}', "args.n", "out of range", id="2**64"),
    pytest.param('{"note": "a\\ud800b"}', "args.note", "lone surrogate", id="lone-surrogate"),
    pytest.param('{"note": "\\udfff"}', "args.note", "lone surrogate", id="lone-low-surrogate"),
    pytest.param('{"note": "x", "path": "../../etc/passwd\\u0000.png"}', "args.path", "NUL", id="nul-truncation"),
    pytest.param('{"note": "' + "x" * 150_000 + '"}', "args.note", "150,000 characters", id="huge-string"),
]


@pytest.mark.parametrize(("args", "field", "words"), HOSTILE_TEXT)
def test_hostile_literals_are_one_validation_error_naming_step_and_field(
    home: Path, args: str, field: str, words: str
) -> None:
    text = (
        '{"goal": "hostile", "steps": [{"id": "first", "tool": "record", "args": {"note": "first"}},\n'
        f'  {{"id": "bad", "tool": "record", "args": {args}}}]}}'
    )
    commands = ("validate", "run") if field == "args.note" else ("run",)
    err = refused(home, text, step="bad", field=field, commands=commands)
    assert words in err
    assert err.count("\n  - ") == 1  # one problem, one line


def test_deep_nesting_is_refused_with_the_limit(home: Path) -> None:
    nested: Any = "x"
    for _ in range(40):
        nested = {"k": nested}
    err = refused(home, json.dumps(plan_with({"id": "deep", "tool": "record", "args": {"note": "x", "path": nested}})))
    assert "plan nests 44 levels deep; the limit is 32" in err  # found before parsing: json.loads never recurses
    err = refused(home, '{"steps": [' + "[" * 100_000 + "]" * 100_000 + "]}")
    assert "nests 100002 levels deep" in err


def test_a_traversal_path_is_refused_where_the_schema_says_a_bare_name(home: Path) -> None:
    err = refused(
        home, json.dumps(plan_with({"id": "open", "tool": "open_named", "args": {"name": "../../etc/passwd"}}))
    )
    assert "step 'open'" in err and "args.name" in err and "does not match" in err


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("rec\u043erd", "CYRILLIC SMALL LETTER O"),  # a homoglyph
        ("Record", "did you mean 'record'"),  # case
        ("record ", "spaces around it"),  # a trailing space
        ("rec\u200bord", "ZERO WIDTH SPACE"),  # an invisible character
    ],
)
def test_tool_name_look_alikes_are_unknown_tools_never_silently_corrected(home: Path, name: str, words: str) -> None:
    err = refused(home, json.dumps(plan_with({"id": "fake", "tool": name, "args": {"note": "x"}})), step="fake")
    assert "unknown tool" in err and words in err


def test_cycles_through_references_templates_and_for_each_are_refused(home: Path) -> None:
    plan = plan_with(
        {"id": "a", "tool": "echo", "for_each": "step:c.items", "args": {"value": "item"}},
        {"id": "b", "tool": "echo", "args": {"value": "{{step:a}}"}},
        {"id": "c", "tool": "echo", "args": {"value": "step:b"}},
    )
    err = refused(home, json.dumps(plan))
    assert "dependency cycle:" in err
    cycle = err.split("dependency cycle: ")[1].split("\n")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


def test_results_with_odd_unicode_print_as_text_and_as_json(home: Path) -> None:
    path = home / "odd.json"
    path.write_text(json.dumps({"steps": [{"id": "odd", "tool": "odd_text"}], "output": "step:odd"}))
    text = cli(home, "run", str(path))
    assert text.returncode == 0, text.stderr
    assert "Traceback" not in text.stderr and "\\ud800" in text.stdout and "bidi" in text.stdout
    as_json = cli(home, "run", str(path), "--json")
    assert as_json.returncode == 0, as_json.stderr
    output = json.loads(as_json.stdout)["output"]
    assert output["surrogate"] == "a\ud800b" and output["escape"] == "\x1b[2J" and output["nul"] == "x\x00y"


# --- the same through execute_plan, counting what ran ----------------------------------------------------


@pytest.fixture
def calls() -> Counter[str]:
    return Counter()


@pytest.fixture
def tools(calls: Counter[str]) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    async def work(n: int) -> list[int]:
        """Count."""
        calls["work"] += 1
        return list(range(n))

    @registry.tool(kind="small_model")
    async def judge(text: str) -> str:
        """A model call."""
        calls["judge"] += 1
        return "fine"

    return registry


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    [float("inf"), float("nan"), 10**30, "a\x00b", "\ud800", {"k\x00": 1}, deep(40), deep(100_000)],
    ids=["inf", "nan", "huge-int", "nul", "surrogate", "nul-key", "deep", "very-deep"],
)
async def test_execute_plan_refuses_hostile_values_before_anything_runs(
    tools: ToolRegistry, calls: Counter[str], value: Any
) -> None:
    plan = {
        "steps": [
            {"id": "ok", "tool": "work", "args": {"n": 1}},
            {"id": "bad", "tool": "judge", "args": {"text": value}},
        ]
    }
    with pytest.raises(PlanValidationError) as caught:
        await execute_plan(plan, registry=tools)
    assert [issue.step_id for issue in caught.value.issues] == ["bad"]
    assert calls == Counter()


@pytest.mark.anyio
async def test_an_oversized_model_fan_out_runs_nothing_of_it(tools: ToolRegistry, calls: Counter[str]) -> None:
    plan = {
        "steps": [
            {"id": "many", "tool": "work", "args": {"n": 5000}},
            {"id": "each", "tool": "judge", "for_each": "step:many", "args": {"text": "{{item}}"}},
        ]
    }
    compiled = validate_plan(plan, tools, limits=ModelPlanLimits())
    result = await execute_plan(compiled, registry=tools)
    assert result.steps["many"].status == "succeeded" and result.steps["each"].status == "failed"
    assert "MODEL_PLAN_MAX_FOR_EACH" in (result.steps["each"].error or "")
    assert calls == Counter({"work": 1})


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("n=" + "9" * 5000, "5,000 digits"),
        ("n=1e999", "not finite"),
        ("n=NaN", "not finite"),
        ("n=" + "[" * 100_000, "expected number"),
    ],
    ids=["5000-digit-int", "1e999", "NaN", "deep"],
)
def test_hostile_run_inputs_are_one_input_error(home: Path, pair: str, words: str) -> None:
    path = home / "inputs.json"
    path.write_text(
        json.dumps(
            {
                "inputs": {"n": {"type": "number"}},
                "steps": [{"id": "first", "tool": "record", "args": {"note": "{{input:n}}"}}],
            }
        )
    )
    proc = cli(home, "run", str(path), "--input", pair)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and words in proc.stderr and len(proc.stderr) < 400
    assert ran(home) == []
