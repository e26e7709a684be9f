"""Confined file access, size caps, input files checked up front, relative defaults, reports without blanks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import InputError
from orchestrator.executor import execute_plan
from orchestrator.files import (
    FileAccess,
    FileAccessError,
    check_document,
    check_input_files,
    confine,
    input_folders,
    run_access,
    use_access,
)
from orchestrator.plan.defaults import resolve_relative_defaults
from orchestrator.plan.validate import load_plan, validate_plan
from orchestrator.settings import Settings, use_settings
from orchestrator.toolbox import default_registry
from orchestrator.workers.documents import drop_blanks, format_report

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """A working directory with a document, a secret next to it (outside), and a link from inside to the secret."""
    work = tmp_path / "work"
    secret = tmp_path / "secret"
    work.mkdir()
    secret.mkdir()
    (work / "doc.txt").write_text("hello from the document\n")
    (secret / "key.txt").write_text("-----BEGIN PRIVATE KEY-----\n")
    (work / "link.txt").symlink_to(secret / "key.txt")
    monkeypatch.chdir(work)
    with use_settings(Settings(orchestrator_home=tmp_path / "home")):
        yield {"work": work, "secret": secret, "key": secret / "key.txt"}


def reader_plan(source: str, *, default: str | None = None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if default is not None:
        inputs = {"p": {"type": "string", "default": default}}
    return {
        "inputs": inputs,
        "steps": [{"id": "read", "tool": "load_documents", "args": {"source": source}}],
        "output": "step:read",
    }


async def run(plan: dict[str, Any], inputs: dict[str, Any] | None = None) -> Any:
    return await execute_plan(plan, inputs or {}, registry=default_registry(plugins=False))


# -- the policy, through real runs --------------------------------------------------------------------


async def test_a_document_in_the_working_directory_is_read(layout: dict[str, Path]) -> None:
    result = await run(reader_plan("doc.txt"))
    assert result.ok and "hello" in result.output[0]["text"]


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("../secret/key.txt", "leaves the allowed folders through '..'"),
        ("link.txt", "is a symbolic link to"),
        ("/etc/passwd", "is outside the allowed folders"),
        ("/etc/*", "is outside the allowed folders"),
        ("../secret", "leaves the allowed folders"),
    ],
)
async def test_a_plan_cannot_read_outside_the_allowed_folders(layout: dict[str, Path], source: str, why: str) -> None:
    result = await run(reader_plan(source))
    step = result.steps["read"]
    assert step.status == "failed" and why in (step.error or "")
    assert "ALLOWED_PATHS" in (step.error or "") and "FILE_ACCESS=unrestricted" in (step.error or "")
    assert result.output is None and "PRIVATE KEY" not in json.dumps(result.model_dump(mode="json"))


async def test_a_path_the_caller_gave_as_an_input_is_allowed(layout: dict[str, Path]) -> None:
    plan = {**reader_plan("input:p"), "inputs": {"p": {"type": "string"}}}
    result = await run(plan, {"p": str(layout["key"])})
    assert result.ok and "PRIVATE KEY" in result.output[0]["text"]


async def test_a_plans_own_default_does_not_widen_the_allowed_folders(layout: dict[str, Path]) -> None:
    result = await run(reader_plan("input:p", default=str(layout["key"])))
    assert result.steps["read"].status == "failed"
    assert "outside the allowed folders" in (result.steps["read"].error or "")


async def test_allowed_paths_and_unrestricted_access_are_settings(layout: dict[str, Path], tmp_path: Path) -> None:
    with use_settings(allowed_paths=(str(layout["secret"]),)):
        assert (await run(reader_plan(str(layout["key"])))).ok
    with use_settings(file_access="unrestricted"):
        assert (await run(reader_plan("../secret/key.txt"))).ok


async def test_every_file_reading_tool_is_confined(layout: dict[str, Path]) -> None:
    rules = str(layout["secret"] / "rules.json")
    (layout["secret"] / "rules.json").write_text("{}")
    plan = {
        "steps": [
            {"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "/etc/hostname"}},
            {"id": "list", "tool": "list_files", "args": {"source": str(layout["secret"])}},
            {"id": "records", "tool": "load_records", "args": {"path": "../secret/key.txt"}},
            {"id": "cat", "tool": "expense_categorizer", "args": {"items": [], "rules_path": rules}},
        ]
    }
    result = await run(plan)
    for sid in ("ocr", "list", "records", "cat"):
        assert result.steps[sid].status == "failed", sid
        assert "allowed folders" in (result.steps[sid].error or ""), (sid, result.steps[sid].error)
    assert result.status == "failed"  # nothing succeeded: not "partial"


def test_outside_a_run_nothing_is_confined(layout: dict[str, Path]) -> None:
    assert confine("../secret/key.txt") == Path("../secret/key.txt")


def test_a_nul_character_is_refused_in_a_path(layout: dict[str, Path]) -> None:
    with use_access(FileAccess((layout["work"],))), pytest.raises(FileAccessError, match="NUL"):
        confine("doc.txt\x00../../etc/passwd")


SEGMENTS = st.lists(st.sampled_from(["..", ".", "a", "b", "doc.txt"]), min_size=1, max_size=6)


@settings(deadline=None, max_examples=60)
@given(SEGMENTS)
def test_a_relative_path_is_allowed_exactly_when_it_stays_under_the_working_directory(parts: list[str]) -> None:
    work = Path.cwd().resolve()
    access = FileAccess((work,))
    path = os.path.join(*parts)
    inside = Path(os.path.normpath(work / path)).is_relative_to(work)
    try:
        access.check(path)
        allowed = True
    except FileAccessError:
        allowed = False
    assert allowed == inside


def test_the_roots_are_the_inputs_folders_the_working_directory_and_allowed_paths(layout: dict[str, Path]) -> None:
    with use_settings(allowed_paths=("/opt/data",)):
        access = run_access({"p": str(layout["key"]), "n": 3, "text": "not a path at all"})
    assert access.roots[0] == layout["work"].resolve()
    assert Path("/opt/data") in access.roots and layout["secret"].resolve() in access.roots
    (layout["work"] / "data").mkdir()
    (layout["work"] / "a").mkdir()
    (layout["work"] / "a" / "b.txt").write_text("b")
    assert input_folders(["data/*.png", ["a/b.txt"]]) == [Path("data").resolve(), Path("a").resolve()]
    assert input_folders(["/", "no/such/thing.png", "1.5", "words, not a path", 3]) == []


# -- size caps ----------------------------------------------------------------------------------------


async def test_a_document_over_max_document_bytes_is_refused_naming_file_size_and_setting(
    layout: dict[str, Path],
) -> None:
    (layout["work"] / "big.txt").write_text("x" * 5_000)
    with use_settings(max_document_bytes=1_000):
        result = await run({"steps": [{"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "big.txt"}}]})
    error = result.steps["ocr"].error or ""
    assert "big.txt: 5.0 kB is over the 1.0 kB limit (MAX_DOCUMENT_BYTES)" in error


async def test_a_text_over_max_text_chars_is_refused(layout: dict[str, Path]) -> None:
    (layout["work"] / "long.txt").write_text("word " * 400)
    with use_settings(max_text_chars=1_000):
        result = await run(reader_plan("long.txt"))
    assert "2,000 characters of text is over the 1,000 limit (MAX_TEXT_CHARS)" in (result.steps["read"].error or "")


# -- input files checked before the run ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("missing.png", None, "no such file"),
        ("empty.png", b"", "is empty"),
        ("fake.png", b"this is not an image at all", "not a readable image"),
        ("fake.pdf", b"hello", "not a PDF"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_a_missing_or_corrupt_input_file_is_an_input_error(
    tmp_path: Path, name: str, content: bytes | None, why: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=why):
        check_document(path)
    compiled = load_plan(REPO / "examples" / "example_plan_hybrid.json", default_registry(plugins=False))
    with pytest.raises(InputError, match=f"--input image_path={path}: {why}"):
        check_input_files(compiled, {"image_path": str(path)})


def test_a_good_input_file_passes_and_inputs_not_read_as_files_are_not_checked() -> None:
    compiled = load_plan(REPO / "examples" / "example_plan_hybrid.json", default_registry(plugins=False))
    check_input_files(compiled, {"image_path": str(REPO / "examples" / "receipts" / "grocery.png")})
    plan = validate_plan(
        {
            "inputs": {"x": {"type": "string"}},
            "steps": [{"id": "r", "tool": "format_report", "args": {"text": "input:x"}}],
        },
        default_registry(plugins=False),
    )
    check_input_files(plan, {"x": "/no/such/file"})


# -- relative defaults, and reports without blanks ----------------------------------------------------


def test_an_example_plans_relative_default_resolves_against_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    compiled = load_plan(REPO / "examples" / "example_plan_hybrid.json", default_registry(plugins=False))
    assert compiled.plan.inputs["image_path"].default == str(REPO / "examples" / "receipts" / "cafe.png")
    data = {"inputs": {"a": {"default": "receipts/*.png"}, "b": {"default": "no/such"}, "c": {"default": "/abs"}}}
    resolved = resolve_relative_defaults(data, REPO / "examples")
    assert resolved["inputs"]["a"]["default"] == str(REPO / "examples" / "receipts/*.png")
    assert resolved["inputs"]["b"]["default"] == "no/such" and resolved["inputs"]["c"]["default"] == "/abs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Spent 581586.44  at  on  ", "Spent 581586.44"),
        (
            "Spent 12.3  at  on 2024-01-01 (receipt says ; parser confidence 0.9).",
            "Spent 12.3 on 2024-01-01 (parser confidence 0.9).",
        ),
        ("Spent 9 USD at Cafe on 2024-01-01 (receipt says 9; parser confidence 1.0).", None),
        ("All went well, as it was.", None),
        ("Total: 5, paid in cash", None),
    ],
)
def test_the_report_leaves_out_fields_it_does_not_have(text: str, expected: str | None) -> None:
    assert drop_blanks(text) == (expected if expected is not None else text)


def test_format_report_has_no_blanks_for_missing_receipt_fields() -> None:
    report = format_report(text="Spent 581586.44  at  on  ", title="Receipt: ")
    assert report == "# Receipt\n\nSpent 581586.44\n"


async def test_an_input_the_caller_gave_counts_even_when_the_plan_repeats_it_as_its_default(
    layout: dict[str, Path],
) -> None:
    plan = reader_plan("input:p", default=str(layout["key"]))  # a model copying the context into a default
    result = await run(plan, {"p": str(layout["key"])})
    assert result.ok and "PRIVATE KEY" in result.output[0]["text"]
