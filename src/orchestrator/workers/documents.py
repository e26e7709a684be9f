"""Getting documents in and reports out: load files and records, pick sections, rank, format."""

from __future__ import annotations

import csv
import glob
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from orchestrator.errors import ToolError
from orchestrator.registry import tool

TEXT_SUFFIXES = {".txt", ".md", ".text"}


class Document(BaseModel):
    path: str
    name: str
    text: str


def _expand(pattern: str) -> list[Path]:
    path = Path(pattern)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not path.exists():
        raise ToolError(f"{pattern}: no such file or folder")
    return [path]


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def load_documents(source: str, limit: int | None = None) -> list[Document]:
    """Read text documents: a file, a folder (its .txt/.md files) or a glob pattern.

    Args:
        source: a path, folder or glob such as examples/papers/*.txt.
        limit: read at most this many.
    """
    paths = _expand(source)[:limit]
    if not paths:
        raise ToolError(f"{source}: no documents found")
    docs = []
    for path in paths:
        try:
            docs.append(Document(path=str(path), name=path.name, text=path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            raise ToolError(f"{path}: not UTF-8 text") from None
    return docs


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def list_files(source: str, limit: int | None = None) -> list[str]:
    """List document files: a folder's files, a glob's matches, or one file.

    Args:
        source: a folder, a glob such as examples/invoices/*.png, or a file.
        limit: at most this many.
    """
    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = [str(p) for p in _expand(source)]
    if not files:
        raise ToolError(f"{source}: no files found")
    return files[:limit]


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def build_table(columns: dict[str, list[Any]], pick: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Zip equally long lists into rows: {"paper": [...], "method": [...]} -> [{"paper":..,"method":..}, ...].

    Args:
        columns: column name -> values, all the same length.
        pick: column name -> the field to take from each value (e.g. {"paper": "name", "method": "label"}).
    """
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ToolError(f"columns differ in length: {lengths}")
    pick = pick or {}
    unknown = sorted(set(pick) - set(columns))
    if unknown:
        raise ToolError(f"pick names columns that do not exist: {', '.join(unknown)}")
    n = next(iter(lengths.values()), 0)
    rows = []
    for i in range(n):
        row = {}
        for name, values in columns.items():
            value = values[i]
            if name in pick:
                value = value.get(pick[name]) if isinstance(value, dict) else None
            row[name] = value
        rows.append(row)
    return rows


class Record(BaseModel):
    id: str
    text: str
    fields: dict[str, Any] = {}


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def load_records(path: str, text_field: str = "text", id_field: str = "id") -> list[Record]:
    """Read records (e.g. customer feedback) from a JSONL or CSV file.

    Args:
        path: a .jsonl or .csv file.
        text_field: the field holding the text.
        id_field: the field holding an id (the line number is used when absent).
    """
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"{path}: no such file")
    raw = file.read_text(encoding="utf-8")
    rows: list[tuple[int, dict[str, Any]]]  # (line number, record), so errors and ids point into the file
    if file.suffix.lower() == ".csv":
        rows = [(n, row) for n, row in enumerate(csv.DictReader(io.StringIO(raw)), 2)]
    else:
        rows = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ToolError(f"{path}:{n}:{exc.colno}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise ToolError(f"{path}:{n}: expected a JSON object per line")
            rows.append((n, row))
    records = []
    for n, row in rows:
        if text_field not in row:
            raise ToolError(f"{path}:{n}: record has no field {text_field!r} (fields: {', '.join(row)})")
        records.append(Record(id=str(row.get(id_field, n)), text=str(row[text_field]), fields=dict(row)))
    return records


_HEADING = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?\s+)?([A-Z][A-Za-z &/-]{2,60})\s*:?\s*$")


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def extract_section(text: str, headings: list[str]) -> str:
    """Return the section of a document under the first matching heading (up to the next heading).

    Args:
        text: the document text.
        headings: heading names to look for, case-insensitive (e.g. ["methods", "methodology"]).
    """
    wanted = [h.lower() for h in headings]
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if m and any(w in m.group(1).lower() for w in wanted):
            start = i + 1
            break
    if start is None:
        return ""
    end = len(lines)
    for j in range(start, len(lines)):
        if _HEADING.match(lines[j]) and lines[j].strip() and not lines[j].strip().endswith("."):
            end = j
            break
    return "\n".join(lines[start:end]).strip()


class Ranked(BaseModel):
    value: str
    count: int
    share: float


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def count_and_rank(values: list[Any], field: str | None = None, top: int | None = None) -> list[Ranked]:
    """Count equal values (lists are flattened) and rank them, most frequent first.

    Args:
        values: values to count, e.g. labels or key issues per document.
        field: take this field of each value first (e.g. "label" of classification results).
        top: keep only this many.
    """
    flat: list[str] = []
    for value in values:
        if field is not None:
            value = value.get(field) if isinstance(value, dict) else None
        if isinstance(value, list):
            flat.extend(str(v) for v in value)
        elif isinstance(value, dict) and "label" in value:
            flat.append(str(value["label"]))
        elif value is not None:
            flat.append(str(value))
    counts = Counter(flat)
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [Ranked(value=v, count=c, share=round(c / total, 3)) for v, c in ranked]


@tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def format_report(
    text: str = "", title: str | None = None, data: Any = None, format: Literal["markdown", "text"] = "markdown"
) -> str:
    """Format a readable report from a sentence (with {{step:...}} references) and optional data.

    Args:
        text: the report's opening text.
        title: a heading.
        data: anything to show below the text: tables for lists of objects, key/value lines for objects.
        format: markdown or plain text.
    """
    out: list[str] = []
    if title:
        out.append(f"# {title}" if format == "markdown" else title.upper())
        out.append("")
    if text:
        out.append(text)
    if data is not None:
        out.append("")
        out.extend(_render(data, format))
    return "\n".join(out).strip() + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)[:80]
    return str(value)


def _render(data: Any, format: str) -> list[str]:
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        columns = list(dict.fromkeys(k for row in data for k in row))
        if format == "markdown":
            lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in data]
            return lines
        return ["  ".join(f"{c}={_cell(row.get(c, ''))}" for c in columns) for row in data]
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            if isinstance(value, dict | list) and value and format == "markdown":
                lines.append(f"**{key}**")
                lines.extend(_render(value, format))
                lines.append("")
            else:
                lines.append(f"- {key}: {_cell(value)}" if format == "markdown" else f"{key}: {_cell(value)}")
        return lines
    if isinstance(data, list):
        return [f"- {_cell(v)}" for v in data]
    return [_cell(data)]
