"""What the command modules share: consoles, JSON output, running a coroutine."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout and nothing else")]
InputsOpt = Annotated[
    list[str] | None, typer.Option("--input", "-i", help="a plan input as NAME=VALUE (repeatable)", show_default=False)
]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
