"""``orchestrator mcp serve``: the tools and the orchestrator itself, served over MCP (stdio or streamable HTTP).

Served:

- every tool of the registry (the built-ins, plugins, and the tools of ``ORCHESTRATOR_MCP_CONFIG``'s
  servers), with its input schema, its output schema (a non-object output is wrapped in
  ``{"result": ...}``, as the SDK's ``MCPServer`` does, since MCP wants an object), its annotations, and
  structured output; ``_meta`` says which worker mode answered, the usage and the counts;
- ``validate_plan(plan)``, ``run_plan(plan, inputs)`` and ``plan_and_run(request, inputs)``; the last two
  send a progress notification as each step ends (when the client asked for progress).

It is built on the SDK's low-level :class:`mcp.server.lowlevel.Server` rather than ``MCPServer``: our
tools already carry their JSON Schemas and validate their arguments, and ``MCPServer`` would derive new
schemas from the Python signatures instead of serving the ones the planner sees.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from orchestrator.budget import Budget
from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import OrchestratorError, UserError, is_retryable
from orchestrator.mcp_bridge.source import needs_wrap
from orchestrator.mcp_bridge.tools import META, dumps_compact
from orchestrator.mcp_bridge.wire import MAX_LINE, LineReader, LineWriter
from orchestrator.registry import ToolAnnotations, ToolRegistry, ToolSpec
from orchestrator.run_scope import current_scope, enter_scope, run_scope

__all__ = ["ORCHESTRATOR_TOOLS", "bearer_guard", "build_server", "serve_http", "serve_stdio"]

logger = logging.getLogger(__name__)

_PLAN = {
    "description": "an execution plan: a JSON object (`orchestrator schema`), or its JSON text",
    "anyOf": [{"type": "object"}, {"type": "string"}],
}
_INPUTS = {"type": "object", "description": "the plan's inputs by name", "default": {}}

ORCHESTRATOR_TOOLS: dict[str, tuple[str, dict[str, Any], ToolAnnotations]] = {
    "validate_plan": (
        "Check an execution plan against the format and the tools, listing every problem; runs nothing.",
        {"type": "object", "properties": {"plan": _PLAN}, "required": ["plan"]},
        ToolAnnotations(read_only=True, destructive=False, idempotent=True, open_world=False),
    ),
    "run_plan": (
        "Run an execution plan with its inputs; returns the run result (status, output, every step's result). "
        "Sends a progress notification as each step ends.",
        {"type": "object", "properties": {"plan": _PLAN, "inputs": _INPUTS}, "required": ["plan"]},
        ToolAnnotations(),
    ),
    "plan_and_run": (
        "Plan a request in plain language with the large planner, then run the plan with the inputs; returns "
        "the plan, the run result and the planning report. Sends a progress notification as each step ends.",
        {
            "type": "object",
            "properties": {"request": {"type": "string", "minLength": 1}, "inputs": _INPUTS},
            "required": ["request"],
        },
        ToolAnnotations(),
    ),
}


def _mcp_annotations(hints: ToolAnnotations) -> Any:
    from mcp.types import ToolAnnotations as McpAnnotations

    return McpAnnotations(
        read_only_hint=hints.read_only,
        destructive_hint=hints.destructive,
        idempotent_hint=hints.idempotent,
        open_world_hint=hints.open_world,
    )


def _listing(spec: ToolSpec) -> Any:
    from mcp.types import Tool

    wrapped = needs_wrap(spec.output_schema)
    output = wrap_schema(spec.output_schema) if wrapped else spec.output_schema
    return Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_schema if spec.input_schema.get("type") == "object" else {"type": "object"},
        output_schema=output,
        annotations=_mcp_annotations(spec.annotations),
        _meta={META + "kind": spec.kind.value, META + "wrapped": wrapped},
    )


def wrap_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``{"result": <schema>}`` as an object schema; ``$defs`` move to the top so that references resolve."""
    inner = {k: v for k, v in schema.items() if k != "$defs"}
    wrapper: dict[str, Any] = {"type": "object", "properties": {"result": inner}, "required": ["result"]}
    if "$defs" in schema:
        wrapper["$defs"] = schema["$defs"]
    return wrapper


def _text_result(value: Any, *, structured: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A successful ``CallToolResult`` in its wire form (the SDK takes a handler's dict as the result, which
    spares building the model only to dump it again; the SDK still validates it against the protocol, and drops
    ``resultType``, which only the 2026 era has, from a 2025-era answer)."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": dumps_compact(value)}], "resultType": "complete"}
    if structured is not None:
        result["structuredContent"] = structured
    if meta:
        result["_meta"] = meta
    return result


def _error_result(exc: BaseException, *, budget: Budget | None = None) -> dict[str, Any]:
    text = str(exc) or type(exc).__name__
    meta: dict[str, Any] = {META + "retryable": is_retryable(exc), META + "error_type": type(exc).__name__}
    if budget is not None:
        meta[META + "budget"] = _spent(budget)
    return {"content": [{"type": "text", "text": text}], "isError": True, "resultType": "complete", "_meta": meta}


def _call_budget(meta: Any) -> Budget | None:
    """The budget a call runs under when the caller is a run of ours: ``_meta["orchestrator/budget"]`` says
    what is left of that run's budget (``{"limit_usd": 0.25}``, or ``{"limit_usd": null}`` for no limit). None
    when the caller sent none (a host's call).

    Raises:
        ValueError: the value is not of that shape.
    """
    import math

    raw = (meta or {}).get(META + "budget")
    if raw is None:
        return None
    limit = raw.get("limit_usd", "missing") if isinstance(raw, dict) else "missing"
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit) or limit < 0
    ):
        raise ValueError(f'_meta["{META}budget"] must be {{"limit_usd": <dollars >= 0, or null>}}, not {raw!r}')
    return Budget(None if limit is None else float(limit))


def _spent(budget: Budget) -> dict[str, Any]:
    """What one call's budget recorded, for the caller's run budget."""
    return {"spent_usd": budget.spent_usd, "calls": budget.calls, "stopped": budget.stopped}


class _Progress:
    """Turns a run's events into progress notifications, sent in order by one task."""

    def __init__(self, report: Callable[[float, float | None, str | None], Awaitable[None]]) -> None:
        self.report = report
        self.queue: asyncio.Queue[tuple[float, float | None, str] | None] = asyncio.Queue()
        self.total: int | None = None
        self.done = 0
        self.task = asyncio.get_running_loop().create_task(self.pump())

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "run_started":
            self.total = event.steps or None
            self.queue.put_nowait((0, self.total, f"started: {event.steps} steps"))
        elif kind in ("step_finished", "step_failed", "step_skipped", "step_cancelled"):
            self.done += 1
            status = kind.removeprefix("step_")
            total = max(self.total, self.done) if self.total else None
            self.queue.put_nowait((self.done, total, f"step {event.step_id!r} {status}"))

    async def pump(self) -> None:
        while (item := await self.queue.get()) is not None:
            try:
                await self.report(*item)
            except Exception:  # a client gone away must not break the run
                logger.debug("progress notification not sent", exc_info=True)

    async def finish(self) -> None:
        self.queue.put_nowait(None)
        await self.task


def _load_plan_arg(plan: Any) -> Any:
    if isinstance(plan, str):
        from orchestrator.plan.source import parse_plan_text

        data, _ = parse_plan_text(plan, origin="plan")
        return data
    return plan


class _Handlers:
    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry
        self.listing = [_listing(spec) for spec in registry.catalog()]
        for name, (description, schema, hints) in ORCHESTRATOR_TOOLS.items():
            if name in registry:
                continue
            wrapped_out = {"type": "object"}
            from mcp.types import Tool

            self.listing.append(
                Tool(
                    name=name,
                    description=description,
                    input_schema=schema,
                    output_schema=wrapped_out,
                    annotations=_mcp_annotations(hints),
                    _meta={META + "kind": "orchestrator", META + "wrapped": False},
                )
            )

    async def list_tools(self, ctx: Any, params: Any) -> Any:
        from mcp.types import ListToolsResult

        return ListToolsResult(tools=self.listing)

    async def call_tool(self, ctx: Any, params: Any) -> Any:
        from mcp.shared.exceptions import MCPError
        from mcp.types import INVALID_PARAMS

        name = params.name
        args = params.arguments or {}
        if name in ORCHESTRATOR_TOOLS and name not in self.registry:
            return await self.orchestrator_tool(ctx, name, args)
        if name not in self.registry:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
        tool = self.registry.get(name)
        try:
            budget = _call_budget(params.meta)
        except ValueError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        step = StepContext("mcp", name)
        token = step_reporter.set(step)
        try:
            scope = current_scope()  # the server's, opened by its lifespan
            if budget is None:  # a host's call: the server's own budget (BUDGET_USD here, for the server's life)
                output = await tool.invoke(args)
            elif scope is not None:  # a remote run's call: what is left of that run's budget, spend reported back
                with enter_scope(scope.with_budget(budget)):
                    output = await tool.invoke(args)
            else:
                async with run_scope(budget):
                    output = await tool.invoke(args)
        except Exception as exc:
            return _error_result(exc, budget=budget)
        finally:
            step_reporter.reset(token)
        meta: dict[str, Any] = {META + "modes": list(step.modes or [])}
        if step.usage is not None:
            meta[META + "usage"] = step.usage.model_dump()
        if step.notes:
            meta[META + "counts"] = dict(step.notes)
        if budget is not None:
            meta[META + "budget"] = _spent(budget)
        structured = {"result": output} if needs_wrap(tool.spec.output_schema) else output
        return _text_result(output, structured=structured, meta=meta)

    async def orchestrator_tool(self, ctx: Any, name: str, args: dict[str, Any]) -> Any:
        try:
            if name == "validate_plan":
                return _text_result(result := self.validate(args.get("plan")), structured=result)
            progress = _Progress(ctx.session.report_progress)
            try:
                if name == "run_plan":
                    result = await self.run_plan(args.get("plan"), args.get("inputs") or {}, progress)
                else:
                    result = await self.plan_and_run(args.get("request"), args.get("inputs") or {}, progress)
            finally:
                await progress.finish()
            return _text_result(result, structured=result)
        except OrchestratorError as exc:
            return _error_result(exc)

    def validate(self, plan: Any) -> dict[str, Any]:
        from orchestrator.plan.validate import check_plan

        try:
            data = _load_plan_arg(plan)
        except UserError as exc:
            return {"valid": False, "summary": str(exc), "issues": [{"code": "invalid_json", "message": str(exc)}]}
        compiled, issues = check_plan(data, self.registry)
        return {
            "valid": compiled is not None,
            "summary": compiled.summary() if compiled is not None else f"invalid plan: {len(issues)} problems",
            "issues": [issue.model_dump(mode="json", exclude_none=True) for issue in issues],
        }

    async def run_plan(self, plan: Any, inputs: Any, progress: _Progress) -> dict[str, Any]:
        from orchestrator.executor import prepare_inputs, run_compiled
        from orchestrator.plan.validate import validate_plan

        if not isinstance(inputs, dict):
            raise UserError("'inputs' must be an object of the plan's inputs by name")
        compiled = validate_plan(_load_plan_arg(plan), self.registry)
        values = prepare_inputs(compiled.plan.inputs, inputs)
        result, _ = await run_compiled(compiled, values, on_event=progress)
        data: dict[str, Any] = result.model_dump(mode="json")
        return data

    async def plan_and_run(self, request: Any, inputs: Any, progress: _Progress) -> dict[str, Any]:
        from orchestrator.planner import LargePlanner

        if not isinstance(request, str) or not request.strip():
            raise UserError("'request' must be a non-empty string")
        if not isinstance(inputs, dict):
            raise UserError("'inputs' must be an object of the plan's inputs by name")
        async with LargePlanner(registry=self.registry) as planner:
            done = await planner.run(request, context=inputs, on_event=progress)
        return {
            "plan": done.plan.model_dump(mode="json", exclude_defaults=True),
            "result": done.result.model_dump(mode="json"),
            "planning": done.planning.to_dict(),
        }


def build_server(registry: ToolRegistry, *, name: str = "orchestrator") -> Any:
    """The MCP server (``mcp.server.lowlevel.Server``) serving `registry`'s tools and the orchestrator's own.

    Tools run in one :class:`~orchestrator.run_scope.RunScope` for the server's life (one small-model worker,
    one budget), opened by the server's lifespan.
    """
    from mcp.server.lowlevel import Server

    handlers = _Handlers(registry)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[dict[str, Any]]:
        async with run_scope():
            yield {}

    from importlib.metadata import version

    server = Server(
        name,
        version=version("orchestrator"),
        instructions="Tools of orchestrator: receipts, finance, documents and language workers, and "
        "validate_plan / run_plan / plan_and_run for whole execution plans.",
        lifespan=lifespan,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
    )
    # The SDK wraps every message in an OpenTelemetry span by default, a cost on every call even with no
    # exporter installed; its documented opt-out is to drop that middleware from this list.
    server.middleware.clear()
    return server


async def serve_stdio(server: Any) -> None:
    """Serve over stdin/stdout until the client closes stdin (stray prints are diverted to stderr)."""
    async with _event_loop_stdio() as pipes:
        if pipes is None:  # stdin or stdout is a regular file: the SDK's thread-based transport
            from mcp.server.stdio import stdio_server

            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
            return
        await serve_streams(server, LineReader(pipes[0]), LineWriter(pipes[1]))


async def serve_streams(server: Any, read_stream: LineReader, write_stream: LineWriter) -> None:
    """Serve one connection over the wire streams, in the protocol era the client opens with.

    A client opening with the ``initialize`` handshake (the 2025 era: what our own client uses, see
    :mod:`orchestrator.mcp_bridge.connection`) is served by the SDK's handshake loop (``serve_loop``) directly;
    anything else by ``Server.run``, which serves both eras but relays every message through one more
    in-memory stream and task to choose between them.
    """
    from mcp.server.runner import serve_loop
    from mcp.shared.message import SessionMessage
    from mcp.types import JSONRPCRequest

    try:
        first = await read_stream.receive()
    except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
        return
    read_stream.push_back(first)
    options = server.create_initialization_options()
    handshake = (
        isinstance(first, SessionMessage)
        and isinstance(first.message, JSONRPCRequest)
        and first.message.method == "initialize"
    )
    if not handshake:
        await server.run(read_stream, write_stream, options)
        return
    try:
        async with server.lifespan(server) as state:
            await serve_loop(server, read_stream, write_stream, lifespan_state=state, init_options=options)
    finally:
        await write_stream.aclose()


@asynccontextmanager
async def _event_loop_stdio() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    """The wire on private copies of fds 0 and 1, read and written by the event loop, with fd 0 pointed at the
    null device and fd 1 at stderr meanwhile (so a tool that prints cannot corrupt the protocol).

    Yields None, leaving the SDK to its own thread-based streams, when stdin or stdout is not a pipe,
    socket or terminal (a regular file cannot be watched by the event loop).
    """
    import stat

    def watchable(fd: int) -> bool:
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return False
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)

    if sys.platform == "win32" or not (watchable(0) and watchable(1)):
        yield None
        return
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), os.fdopen(wire_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    try:
        yield reader, writer
    finally:
        read_transport.close()
        write_transport.close()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


def bearer_guard(app: Any, token: str) -> Any:
    """An ASGI wrapper answering 401 to any HTTP request without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = json.dumps({"error": "unauthorized: send Authorization: Bearer <token>"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="orchestrator"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


async def serve_http(
    server: Any, host: str, port: int, *, token: str | None, ready: Callable[[int], None] | None = None
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until cancelled (Ctrl-C).

    Args:
        server: From :func:`build_server`.
        host: The address to bind (127.0.0.1 unless told otherwise).
        port: The port (0: any free one, passed to `ready`).
        token: When set, every request must carry it as a bearer token.
        ready: Called with the bound port once the server listens.
    """
    import socket

    import anyio
    import uvicorn

    app = server.streamable_http_app(host=host)
    if token:
        app = bearer_guard(app, token)
    # Bind here, not in uvicorn: it exits the process when it cannot bind, and we want one clear error.
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say they are
    # TCP, and without it each response's body waited for the client's delayed ACK of its headers (40 ms).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.get_running_loop().create_task(web.serve(sockets=[sock]))
    try:
        while not web.started and not task.done():
            await asyncio.sleep(0.02)
        if ready is not None and web.started:
            ready(bound)
        await task
    finally:
        if not task.done():
            web.should_exit = True
            with anyio.CancelScope(shield=True):
                await task
        sock.close()
