"""Confined, bounded file access: the one check every tool that reads a file goes through.

A plan is data, often written by a model: it must not be able to read ``~/.ssh/id_rsa`` or ``/etc/passwd``
by naming them and pass their text on. So, during a run, a tool reads only under the **allowed roots**:

- the folders of the run's own input paths (the values the caller gave, e.g. ``--input image_path=...``
  or each document of a batch; a plan's own default values do not widen the roots);
- the working directory;
- the plan file's folder, when the plan came from a file (its relative defaults point there);
- the folders in ``ALLOWED_PATHS`` (separated by ``:`` or ``,``).

Paths are resolved before the check, so ``..`` and symbolic links that lead outside are refused, with a
step error saying which path, why, and how to allow it. ``FILE_ACCESS=unrestricted`` turns the check off
(for a trusted setting). Outside a run (your own code calling a tool's function) nothing is confined.

Size: a file over ``MAX_DOCUMENT_BYTES`` (default 20 MB), or a text over ``MAX_TEXT_CHARS`` characters
(default 1,000,000), is refused before it is read, in one line naming the file, its size and the setting.

    with allow_folders(plan_path.parent):          # the CLI: trust the plan file's folder
        await run_compiled(compiled, values)        # the engine confines every step to the run's roots
    path = readable(step_arg, what="image_path")    # a tool: the checked path, or a ToolError
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from orchestrator.errors import InputError, ToolError
from orchestrator.settings import Settings, current_settings

if TYPE_CHECKING:
    from orchestrator.plan.validate import CompiledPlan

FilePath = Annotated[str, Field(json_schema_extra={"format": "file-path"})]
"""A tool parameter naming one file it reads (JSON Schema ``format: file-path``): an input bound to it is checked
before the run (missing, unreadable, too large or corrupt is a user error)."""

PathOrPattern = Annotated[str, Field(json_schema_extra={"format": "path"})]
"""A tool parameter naming a file, a folder or a glob it reads (JSON Schema ``format: path``)."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"})

__all__ = [
    "FileAccess",
    "FilePath",
    "PathOrPattern",
    "check_document",
    "check_input_files",
    "check_named_documents",
    "file_inputs",
    "FileAccessError",
    "allow_folders",
    "check_text_size",
    "confine",
    "current_access",
    "input_folders",
    "readable",
    "run_access",
    "use_access",
]

_WILDCARDS = "*?["


class FileAccessError(ToolError):
    """A path outside the allowed roots, or a file too large to read. Never retryable."""

    def __init__(self, message: str, *, path: str):
        super().__init__(message, retryable=False, details={"path": path})


@dataclass(frozen=True)
class FileAccess:
    """The folders a run may read under (resolved), or unrestricted."""

    roots: tuple[Path, ...]
    unrestricted: bool = False

    def allows(self, path: Path) -> bool:
        """Whether the resolved `path` is inside one of the roots."""
        return self.unrestricted or any(path == root or path.is_relative_to(root) for root in self.roots)

    def check(self, path: str | Path, *, what: str = "path") -> Path:
        """`path` resolved, if allowed.

        Raises:
            FileAccessError: it leads outside the roots (directly, through ``..``, or through a symlink).
        """
        given = Path(path)
        if self.unrestricted:
            return given
        full = given if given.is_absolute() else Path.cwd() / given
        real = full.resolve()
        if self.allows(real):
            return given
        lexical = Path(os.path.normpath(full))
        if ".." in given.parts and not self.allows(lexical):
            why = f"{what} {str(given)!r} leaves the allowed folders through '..'"
        elif self.allows(lexical):
            why = f"{what} {str(given)!r} is a symbolic link to {str(real)!r}, outside the allowed folders"
        else:
            why = f"{what} {str(given)!r} is outside the allowed folders"
        raise FileAccessError(f"{why} ({self.describe()})", path=str(given))

    def describe(self) -> str:
        """``allowed: /work, /data; add a folder to ALLOWED_PATHS or set FILE_ACCESS=unrestricted``."""
        shown = ", ".join(str(root) for root in self.roots[:4]) + (", ..." if len(self.roots) > 4 else "")
        return f"allowed: {shown}; add a folder to ALLOWED_PATHS, or set FILE_ACCESS=unrestricted"


_access: ContextVar[FileAccess | None] = ContextVar("orchestrator_file_access", default=None)
_trusted: ContextVar[tuple[Path, ...]] = ContextVar("orchestrator_trusted_folders", default=())


def current_access() -> FileAccess | None:
    """The file access of the run this code runs in; None outside any run (nothing is confined)."""
    return _access.get()


@contextmanager
def use_access(access: FileAccess | None) -> Iterator[None]:
    """Make `access` the current one for the block (tasks created inside inherit it)."""
    token = _access.set(access)
    try:
        yield
    finally:
        _access.reset(token)


@contextmanager
def allow_folders(*folders: str | Path) -> Iterator[None]:
    """Trust `folders` too (e.g. the plan file's folder) in the runs started inside the block."""
    added = tuple(Path(folder).resolve() for folder in folders)
    token = _trusted.set(_trusted.get() + added)
    try:
        yield
    finally:
        _trusted.reset(token)


def _static_prefix(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard (``data/*/x.png`` -> ``data``)."""
    parts = Path(pattern).parts
    for index, part in enumerate(parts):
        if any(ch in part for ch in _WILDCARDS):
            return Path(*parts[:index]) if index else Path(".")
    return Path(pattern)


def input_folders(values: Iterable[Any]) -> list[Path]:
    """The folders that input values name: an existing folder itself, an existing file's parent, a glob's
    fixed part (when it exists). Lists are looked into; anything else (text that names nothing, numbers, the
    file system's root) names no folder."""
    found: list[Path] = []
    for value in values:
        if isinstance(value, list | tuple):
            found.extend(input_folders(value))
            continue
        if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > 4096:
            continue
        text = value.strip()
        if "://" in text or "\n" in text:
            continue
        pattern = any(ch in text for ch in _WILDCARDS)
        path = _static_prefix(text) if pattern else Path(text)
        try:
            if not path.exists():  # text that names nothing (a label, a number) widens nothing
                continue
            folder = (path if pattern or path.is_dir() else path.parent).resolve()
        except (OSError, ValueError):
            continue
        if folder.parent != folder:  # never the whole file system, whatever an input says
            found.append(folder)
    return found


def _base_roots(settings: Settings) -> list[Path]:
    roots = [Path.cwd().resolve()]
    roots.extend(Path(p).expanduser().resolve() for p in settings.allowed_paths)
    roots.extend(_trusted.get())
    return roots


def run_access(given: Mapping[str, Any], *, settings: Settings | None = None) -> FileAccess:
    """The file access of a run whose caller gave `given` as its input values."""
    settings = settings or current_settings()
    if settings.file_access == "unrestricted":
        return FileAccess((), unrestricted=True)
    roots = _base_roots(settings) + input_folders(given.values())
    return FileAccess(tuple(dict.fromkeys(roots)))


def confine(path: str | Path, *, what: str = "path") -> Path:
    """`path` if the current run may read it (always, outside a run).

    Raises:
        FileAccessError: outside the allowed roots.
    """
    if "\x00" in str(path):
        raise FileAccessError(f"{what}: a path cannot hold a NUL character", path=repr(str(path)))
    access = _access.get()
    return Path(path) if access is None else access.check(path, what=what)


def confine_pattern(pattern: str, *, what: str = "source") -> None:
    """Check a glob pattern's fixed part (``/etc/*`` is refused before anything is listed)."""
    if any(ch in pattern for ch in _WILDCARDS):
        confine(_static_prefix(pattern), what=what)
    else:
        confine(pattern, what=what)


def readable(path: str | Path, *, what: str = "path", settings: Settings | None = None) -> Path:
    """`path`, confined (see :func:`confine`), an existing regular file, and no larger than the cap.

    Raises:
        FileAccessError: outside the allowed roots, or over ``MAX_DOCUMENT_BYTES``.
        ToolError: missing, or a folder.
    """
    checked = confine(path, what=what)
    if checked.is_dir():
        raise ToolError(f"{checked}: is a directory, not a document", retryable=False, details={"path": str(checked)})
    try:
        size = checked.stat().st_size
    except OSError:
        raise ToolError(f"{checked}: no such file", retryable=False, details={"path": str(checked)}) from None
    if not checked.is_file():
        raise ToolError(f"{checked}: not a regular file", retryable=False, details={"path": str(checked)})
    limit = (settings or current_settings()).max_document_bytes
    if size > limit:
        raise FileAccessError(
            f"{checked}: {_size(size)} is over the {_size(limit)} limit (MAX_DOCUMENT_BYTES)", path=str(checked)
        )
    return checked


def check_text_size(text: str, *, source: str, settings: Settings | None = None) -> str:
    """`text`, unless it is longer than ``MAX_TEXT_CHARS``.

    Raises:
        FileAccessError: the text is too long; the message names `source`, its length and the setting.
    """
    limit = (settings or current_settings()).max_text_chars
    if len(text) > limit:
        raise FileAccessError(
            f"{source}: {len(text):,} characters of text is over the {limit:,} limit (MAX_TEXT_CHARS)", path=source
        )
    return text


def glob_confined(pattern: str, *, what: str = "source") -> list[Path]:
    """The files a glob matches, each confined (a symlink among them that leads outside is refused)."""
    confine_pattern(pattern, what=what)
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    return [confine(match, what=what) for match in matches]


def _formats(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    found = {schema["format"]} if isinstance(schema.get("format"), str) else set()
    for option in schema.get("anyOf", []):
        found |= _formats(option)
    return found


def file_inputs(compiled: CompiledPlan) -> dict[str, str]:
    """Plan inputs passed as they are to a tool parameter that reads a path: input name -> that parameter's
    format (``file-path`` for one file, ``path`` for a file, folder or glob)."""
    found: dict[str, str] = {}
    for cs in compiled.steps.values():
        properties = cs.tool.spec.input_schema.get("properties", {})
        args = cs.raw.get("args")
        for arg, value in (args if isinstance(args, dict) else {}).items():
            if not (isinstance(value, str) and value.startswith("input:")):
                continue
            formats = _formats(properties.get(arg))
            name = value.removeprefix("input:")
            if "file-path" in formats:
                found[name] = "file-path"
            elif "path" in formats:
                found.setdefault(name, "path")
    return found


def check_input_files(compiled: CompiledPlan, given: Mapping[str, Any], *, settings: Settings | None = None) -> None:
    """Check the files named by inputs the user gave, before anything runs (see :func:`check_document`).

    Raises:
        InputError: ``--input NAME=VALUE: why`` for the first that is missing, unreadable, too large or corrupt.
    """
    for name, kind in file_inputs(compiled).items():
        value = given.get(name)
        if not isinstance(value, str):
            continue
        try:
            path = Path(value)
            if kind == "file-path" or path.is_file():
                check_document(path, settings=settings)
            elif not any(ch in value for ch in _WILDCARDS) and not path.exists():
                raise InputError("no such file or folder")
        except InputError as exc:
            raise InputError(f"--input {name}={value}: {exc}") from None


DOCUMENT_SUFFIXES = IMAGE_SUFFIXES | {".pdf", ".txt", ".md", ".text", ".jsonl", ".csv"}


def check_named_documents(values: Mapping[str, Any], *, settings: Settings | None = None) -> None:
    """Check the documents among `values` (strings ending in a document suffix) before a plan is even made
    (``orchestrator ask``/``plan``: which input a plan will read is not known yet).

    Raises:
        InputError: ``--input NAME=VALUE: why``.
    """
    for name, value in values.items():
        if not isinstance(value, str) or any(ch in value for ch in _WILDCARDS) or "\n" in value:
            continue
        if Path(value).suffix.lower() not in DOCUMENT_SUFFIXES:
            continue
        try:
            check_document(Path(value), settings=settings)
        except InputError as exc:
            raise InputError(f"--input {name}={value}: {exc}") from None


def check_document(path: Path, *, settings: Settings | None = None) -> None:
    """Check a document before a run reads it: it exists, is a readable file, within ``MAX_DOCUMENT_BYTES``,
    and (by its suffix) a readable image, a PDF, or UTF-8 text within ``MAX_TEXT_CHARS``.

    Raises:
        InputError: one short reason.
    """
    settings = settings or current_settings()
    if path.is_dir():
        raise InputError("is a folder, not a document")
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError("no such file") from None
    if not os.access(path, os.R_OK):
        raise InputError("cannot be read (permission denied)")
    if size > settings.max_document_bytes:
        raise InputError(f"{_size(size)} is over the {_size(settings.max_document_bytes)} limit (MAX_DOCUMENT_BYTES)")
    if size == 0:
        raise InputError("is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            with path.open("rb") as handle:
                if not handle.read(1024).lstrip().startswith(b"%PDF-"):
                    raise InputError("not a PDF (no %PDF- header)")
        elif suffix in IMAGE_SUFFIXES:
            _check_image(path)
        elif suffix in {".txt", ".md", ".text"}:
            text = path.read_bytes().decode("utf-8-sig")
            if len(text) > settings.max_text_chars:
                raise InputError(
                    f"{len(text):,} characters of text is over the {settings.max_text_chars:,} limit (MAX_TEXT_CHARS)"
                )
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})") from None


def _check_image(path: Path) -> None:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # the OCR extra is not installed: the OCR step says so
        return
    try:
        with Image.open(path) as image:
            image.verify()
    except UnidentifiedImageError:
        raise InputError("not a readable image (its content is not an image format Pillow knows)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"not a readable image ({exc})") from None


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1_000:
        return f"{n / 1_000:.1f} kB"
    return f"{n} bytes"
