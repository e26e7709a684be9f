"""The built-in tools' specs kept on disk: the same specs as the code gives, read back without importing the
worker modules, and rebuilt whenever the file is stale, broken or cannot be written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.registry import DeferredTool, FunctionTool, ToolRegistry
from orchestrator.workers.source import BuiltinTools
from orchestrator.workers.spec_cache import SpecCache, package_key

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
WORKER_MODULES = ("orchestrator.workers.receipts.ocr", "orchestrator.workers.finance", "orchestrator.rules.models")


def _catalog(source: BuiltinTools) -> list[dict[str, object]]:
    registry = ToolRegistry.from_sources([source])
    return [spec.model_dump(mode="json") for spec in registry.catalog()]


def test_the_cached_specs_are_the_specs_the_code_gives(tmp_path: Path) -> None:
    from_code = _catalog(BuiltinTools(use_cache=False))
    first = _catalog(BuiltinTools(tmp_path))  # writes the file
    files = list(tmp_path.glob("tool-specs-*.json"))
    assert len(files) == 1
    second = BuiltinTools(tmp_path)
    tools = list(second.tools())
    assert all(isinstance(t, DeferredTool) and t.known_spec is not None for t in tools)
    assert first == from_code
    assert _catalog(BuiltinTools(tmp_path)) == from_code
    assert len(from_code) == 15


def test_a_miss_writes_the_file_only_once_every_tool_was_built(tmp_path: Path) -> None:
    registry = ToolRegistry.from_sources([BuiltinTools(tmp_path)])
    registry.get("calculate_tax")  # what validating a plan naming one tool does
    assert not list(tmp_path.glob("tool-specs-*.json"))
    registry.catalog()  # listing builds the rest
    assert len(list(tmp_path.glob("tool-specs-*.json"))) == 1


def test_a_cached_tool_is_built_from_its_function_when_got_and_runs(tmp_path: Path) -> None:
    _catalog(BuiltinTools(tmp_path))
    registry = ToolRegistry.from_sources([BuiltinTools(tmp_path)])
    built = registry.get("calculate_tax")
    assert isinstance(built, FunctionTool)
    assert built.spec == {spec.name: spec for spec in registry.catalog()}["calculate_tax"]
    assert asyncio.run(built.invoke({"amount": 100.0, "rate": 0.1}))["tax"] == pytest.approx(10.0)


def test_listing_from_a_current_cache_imports_no_worker_module(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.registry import ToolRegistry\n"
        "from orchestrator.workers.source import BuiltinTools\n"
        "specs = ToolRegistry.from_sources([BuiltinTools(Path(sys.argv[1]))]).catalog()\n"
        "print(json.dumps({'n': len(specs), 'modules': sorted(sys.modules)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}

    def run() -> dict[str, object]:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120, env=env
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out: dict[str, object] = json.loads(proc.stdout)
        return out

    cold = run()
    warm = run()
    assert cold["n"] == warm["n"] == 15
    assert all(m in cold["modules"] for m in WORKER_MODULES)  # a cold cache builds from the code
    assert not [m for m in WORKER_MODULES if m in warm["modules"]]  # a warm one does not import it


def test_a_broken_or_foreign_file_is_rebuilt(tmp_path: Path) -> None:
    _catalog(BuiltinTools(tmp_path))
    (path,) = tmp_path.glob("tool-specs-*.json")
    good = path.read_text()
    for bad in ("{not json", json.dumps({"format": 1, "key": "someone-else", "tools": []}), "[]"):
        path.write_text(bad)
        assert len(_catalog(BuiltinTools(tmp_path))) == 15
        assert json.loads(path.read_text()) == json.loads(good)


def test_an_unwritable_folder_only_costs_the_build(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert len(_catalog(BuiltinTools(blocker / "cache"))) == 15


def test_a_new_key_replaces_the_old_file(tmp_path: Path) -> None:
    SpecCache(tmp_path, "old").save([])
    SpecCache(tmp_path, "new").save([])
    assert [p.name for p in tmp_path.glob("tool-specs-*.json")] == ["tool-specs-new.json"]
    assert SpecCache(tmp_path, "new").load() == []
    assert SpecCache(tmp_path, "old").load() is None


def test_the_key_follows_every_source_file(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    (package / "notes.txt").write_text("ignored")
    key = package_key(package)
    assert package_key(package) == key
    (package / "notes.txt").write_text("still ignored")
    assert package_key(package) == key
    os.utime(package / "sub" / "b.py", ns=(1, 1))
    touched = package_key(package)
    assert touched != key
    (package / "sub" / "b.py").write_text("y = 22\n")
    os.utime(package / "sub" / "b.py", ns=(1, 1))
    assert package_key(package) != touched  # same time, another size
    (package / "c.py").write_text("")
    assert package_key(package) not in (key, touched)
