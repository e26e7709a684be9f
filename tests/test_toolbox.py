"""The registry knows no tools: @tool only describes, sources provide tools, the toolbox assembles them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ConfigurationError, UnknownToolError
from orchestrator.registry import (
    FunctionTool,
    ToolAnnotations,
    ToolKind,
    ToolRegistry,
    ToolSource,
    function_tool,
    is_tool,
    tool,
    tools_in,
)
from orchestrator.toolbox import default_registry
from orchestrator.workers.source import BuiltinTools

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

BUILTIN_NAMES = {
    "build_table",
    "calculate_tax",
    "calculate_totals",
    "count_and_rank",
    "detect_duplicates",
    "expense_categorizer",
    "extract_section",
    "format_report",
    "line_item_parser",
    "list_files",
    "load_documents",
    "load_records",
    "receipt_ocr",
    "small_model",
    "synthesize",
}


def test_tool_describes_a_function_and_registers_it_nowhere() -> None:
    before = default_registry(plugins=False).names()

    @tool(kind="function", read_only=True, idempotent=True, destructive=False, open_world=False)
    def double_it(x: int) -> int:
        """Double a number."""
        return 2 * x

    assert double_it(4) == 8  # the function itself, unchanged
    assert is_tool(double_it)
    assert default_registry(plugins=False).names() == before  # no global registration by side effect
    built = function_tool(double_it)
    assert built is function_tool(double_it)  # built once
    assert built.spec.name == "double_it" and built.spec.description == "Double a number."
    assert built.spec.annotations == ToolAnnotations(
        read_only=True, destructive=False, idempotent=True, open_world=False
    )


def test_a_function_not_described_is_refused() -> None:
    def plain(x: int) -> int:
        return x

    assert not is_tool(plain)
    with pytest.raises(ConfigurationError, match="not described by @tool"):
        function_tool(plain)


def test_an_unknown_kind_is_a_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="unknown kind 'robot'"):
        tool(kind="robot")


def test_annotations_default_to_mcp_worst_case() -> None:
    registry = ToolRegistry()

    @registry.tool
    def anything(x: str) -> str:
        return x

    hints = registry.get("anything").spec.annotations
    assert (hints.read_only, hints.destructive, hints.idempotent, hints.open_world) == (False, True, False, True)


def test_tools_in_lists_a_modules_tools_in_order_and_skips_imported_ones() -> None:
    from orchestrator.workers import finance

    names = [t.spec.name for t in tools_in(finance)]
    assert names == ["calculate_totals", "calculate_tax", "detect_duplicates"]


def test_default_registry_is_the_builtins_and_each_call_is_fresh() -> None:
    first = default_registry(plugins=False)
    assert set(first.names()) == BUILTIN_NAMES | {"code_exec"}  # the built-ins, and the code sandbox's tool
    first.remove("format_report")
    assert "format_report" in default_registry(plugins=False)


class _Source:
    """A tool source holding a resource, as an MCP server or a sandbox would."""

    def __init__(self) -> None:
        self.closed = 0

        def shout(text: str) -> str:
            """Upper-case a text."""
            return text.upper()

        self._tool = FunctionTool(shout, kind=ToolKind.MCP)

    def tools(self) -> Iterator[FunctionTool]:
        yield self._tool

    async def aclose(self) -> None:
        self.closed += 1


@pytest.mark.anyio
async def test_an_extra_source_is_one_argument_and_is_closed_with_the_registry() -> None:
    source = _Source()
    assert isinstance(source, ToolSource)
    registry = default_registry(plugins=False, extra_sources=[source])
    assert set(registry.names()) == BUILTIN_NAMES | {"code_exec", "shout"}
    assert await registry.get("shout").invoke({"text": "hi"}) == "HI"
    await registry.aclose()
    await registry.aclose()  # closing twice closes once
    assert source.closed == 1


def test_on_a_name_clash_the_earlier_source_wins() -> None:
    def format_report(text: str) -> str:
        """An impostor."""
        return text

    class Clash:
        def tools(self) -> list[FunctionTool]:
            return [FunctionTool(format_report)]

    registry = default_registry(plugins=False, extra_sources=[Clash()])
    assert registry.get("format_report").spec.description != "An impostor."


def test_unknown_tool_suggests_close_names() -> None:
    registry = ToolRegistry.from_sources([BuiltinTools()])
    with pytest.raises(UnknownToolError) as info:
        registry.get("format_reprot")
    assert "format_report" in str(info.value)


def test_builtin_annotations_are_honest() -> None:
    specs = {spec.name: spec.annotations for spec in default_registry(plugins=False).catalog()}
    model_calling = {"small_model", "synthesize"}
    for name, hints in specs.items():
        assert not hints.destructive, name  # no built-in deletes or overwrites anything
        if name in model_calling:
            assert not hints.read_only and not hints.idempotent and hints.open_world, name
        else:
            assert hints.read_only and hints.idempotent, name
    assert specs["receipt_ocr"].open_world  # the azure back-end is a remote service
    assert not specs["calculate_tax"].open_world and not specs["list_files"].open_world


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(p for p in (str(SRC), (env or {}).get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {}), "PYTHONPATH": pythonpath},
    )


def test_tools_command_shows_the_annotations() -> None:
    proc = _cli("tools", "--json")
    assert proc.returncode == 0, proc.stderr
    catalog = {entry["name"]: entry for entry in json.loads(proc.stdout)}
    assert catalog["calculate_tax"]["annotations"] == {
        "read_only": True,
        "destructive": False,
        "idempotent": True,
        "open_world": False,
    }
    assert catalog["synthesize"]["annotations"]["read_only"] is False
    table = _cli("tools", env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    line = next(row for row in table.stdout.splitlines() if row.strip().startswith("calculate_tax"))
    assert "read-only, idempotent" in line and "open-world" not in line


PLUGIN = '''
from orchestrator.registry import tool


@tool(read_only=True, idempotent=True, destructive=False, open_world=False)
def plug_echo(text: str) -> str:
    """Echo a text (a plugin's @tool function)."""
    return text


def register_tools(registry):
    @registry.tool
    def plug_hooked(n: int) -> int:
        """Add one (a plugin's register_tools hook)."""
        return n + 1
'''


def test_entry_point_plugins_are_a_source_and_a_broken_one_is_a_warning(tmp_path: Path) -> None:
    for name, body in (("goodplug", PLUGIN), ("badplug", "raise RuntimeError('boom at import')\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
        meta = tmp_path / f"{name}-0.1.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (meta / "entry_points.txt").write_text(f"[orchestrator.tools]\n{name} = {name}\n")
    proc = _cli("tools", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    catalog = {entry["name"]: entry for entry in json.loads(proc.stdout)}
    assert {"plug_echo", "plug_hooked"} <= set(catalog)
    assert catalog["plug_echo"]["annotations"]["read_only"] is True
    assert "tool plugin 'badplug' failed to load: boom at import" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plugins_are_looked_for_only_where_a_distribution_declares_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.plugins import declared_anywhere

    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(tmp_path)])
    assert not declared_anywhere("orchestrator.tools")
    meta = tmp_path / "other-1.0.dist-info"
    meta.mkdir()
    (meta / "entry_points.txt").write_text("[console_scripts]\nother = other:main\n")
    assert not declared_anywhere("orchestrator.tools")
    (meta / "entry_points.txt").write_text("[console_scripts]\nother = other:main\n\n[orchestrator.tools]\nx = x\n")
    assert declared_anywhere("orchestrator.tools")
    zipped = tmp_path / "bundle.zip"
    zipped.write_bytes(b"PK")
    monkeypatch.setattr(sys, "path", [str(zipped)])
    assert declared_anywhere("orchestrator.tools")  # a zip on the path: importlib.metadata decides


def test_a_deferred_builtin_is_built_when_first_got_and_then_kept() -> None:
    from orchestrator.registry import DeferredTool

    registry = default_registry(plugins=False)
    assert isinstance(registry._tools["calculate_tax"], DeferredTool)
    got = registry.get("calculate_tax")
    assert isinstance(got, FunctionTool) and registry.get("calculate_tax") is got
    assert registry._tools["calculate_tax"] is got
