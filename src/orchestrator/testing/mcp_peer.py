"""A small MCP server to test MCP clients against: a real server (the SDK's ``MCPServer``), over stdio.

    python -m orchestrator.testing.mcp_peer [--marker TEXT] [--starts FILE]

Tools: ``add`` (structured output, read-only), ``echo`` (text), ``slow`` (sleeps, then reports how many
calls were in flight at its peak), ``fail`` (a tool error), ``crash`` (the process exits mid-call),
``write_note`` (destructive, not read-only). ``--starts FILE`` appends one line per start (to count
them); ``--marker`` only marks the command line, so a test can find the process (and its orphans).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import anyio
from pydantic import BaseModel


class Sum(BaseModel):
    """The result of ``add``."""

    total: float
    terms: int


def build(starts: Path | None = None, calls: Path | None = None) -> object:
    """The server (an ``mcp.server.mcpserver.MCPServer``)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    server = MCPServer("peer", log_level="WARNING")
    state = {"in_flight": 0, "peak": 0}
    read_only = ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )

    @server.tool(annotations=read_only)
    def add(a: float, b: float = 0.0) -> Sum:
        """Add two numbers."""
        return Sum(total=a + b, terms=2)

    @server.tool(annotations=read_only)
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    @server.tool(annotations=read_only)
    async def slow(seconds: float = 1.0) -> dict[str, int]:
        """Sleep, then say how many calls were running at once at the peak."""
        if calls is not None:
            with calls.open("a", encoding="utf-8") as out:
                out.write("slow\n")
        state["in_flight"] += 1
        state["peak"] = max(state["peak"], state["in_flight"])
        try:
            await anyio.sleep(seconds)
        finally:
            state["in_flight"] -= 1
        return {"peak": state["peak"], "pid": os.getpid()}

    @server.tool()
    def fail(reason: str = "it broke") -> str:
        """Always fails with a tool error."""
        raise ToolError(reason)

    @server.tool()
    def crash(after_s: float = 0.0) -> str:
        """Exit the whole server process in the middle of the call."""
        time.sleep(after_s)
        os._exit(3)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False))
    def write_note(text: str) -> str:
        """Pretend to write a note somewhere."""
        return f"noted: {text}"

    if starts is not None:
        with starts.open("a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\n")
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--marker", default="")
    parser.add_argument("--starts", type=Path, default=None)
    parser.add_argument("--calls", type=Path, default=None, help="append a line here when 'slow' starts")
    parser.add_argument("--fail-start", action="store_true", help="exit at once with an error on stderr")
    args = parser.parse_args(argv)
    if args.fail_start:
        print("peer: refusing to start (--fail-start)", file=sys.stderr)
        return 4
    server = build(args.starts, args.calls)
    server.run("stdio")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
