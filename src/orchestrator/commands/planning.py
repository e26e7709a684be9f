"""``orchestrator plan`` and ``orchestrator ask``: requests in plain language, planned by the large planner.

    orchestrator plan "Process this receipt and categorize items" --input image_path=r.png --out plan.json
    orchestrator ask "Process this receipt and categorize items" --input image_path=r.png [--json]

Which planner is used, and why, is printed on stderr (see :mod:`orchestrator.planner.choose`). ``--input``
values become the plan's inputs: a JSON number, boolean, list or object is taken as such, anything else
as text. Errors are messages, never tracebacks: ``cli.main`` maps them to exit codes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.commands._common import (
    InputsOpt,
    JsonFlag,
    McpConfigOpt,
    print_json,
    run_async,
    stderr,
    stdout,
    use_mcp_config,
)
from orchestrator.errors import InputError

if TYPE_CHECKING:  # the planner, executor and renderers load when a command runs, not for --help
    from orchestrator.executor.events import Event
    from orchestrator.plan.model import Plan
    from orchestrator.planner import LargePlanner, PlannedRun, PlanningReport

ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider",
        "-p",
        help="openai, anthropic, ollama, openai_compatible, azure_openai or library (default: chosen from settings)",
        show_default=False,
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="the planner model (default: PLANNER_MODEL)")]
NoReuseOpt = Annotated[bool, typer.Option("--no-reuse", help="always ask the model; do not use the plan library")]


def register(app: typer.Typer) -> None:
    """Add ``plan`` and ``ask`` to the ``orchestrator`` command."""
    app.command("plan")(plan_command)
    app.command("ask")(ask_command)


def parse_context(pairs: list[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as plan inputs: JSON numbers, booleans, lists and objects as such, else text."""
    context: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--input {pair!r}: expected NAME=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        context[name] = value if isinstance(value, int | float | bool | list | dict) else raw
    return context


def plan_json(plan: Plan) -> str:
    """A plan as the JSON a person would write (defaults left out)."""
    return json.dumps(plan.model_dump(mode="json", exclude_defaults=True), indent=2, ensure_ascii=False)


def _planner(provider: str | None, model: str | None, no_reuse: bool, *, stream: bool = True) -> LargePlanner:
    from orchestrator.planner import LargePlanner

    return LargePlanner(provider, model, library=not no_reuse, stream=stream)


def _print_note(event: Event) -> None:
    from rich.text import Text

    from orchestrator.executor.events import RunNote

    if isinstance(event, RunNote) and event.data.get("kind") not in ("step_planned",):
        stderr.print(Text(f"· {event.message}", style="cyan"))


def cost_line(planning: PlanningReport) -> str:
    """``planning: 1 call, 2,345 in / 456 out tokens, $0.0104 (openai gpt-4o)``, or the library's word."""
    usage = planning.usage
    if usage.calls == 0:
        return f"planning: no model call ({planning.source}), $0.0000"
    calls = f"{usage.calls} call{'s' if usage.calls != 1 else ''}"
    return (
        f"planning: {calls}, {usage.input_tokens:,} in / {usage.output_tokens:,} out tokens, "
        f"${usage.cost_usd:.4f} ({planning.provider} {planning.model or ''})".rstrip()
    )


def plan_command(
    request: Annotated[str, typer.Argument(help="what to do, in plain language")],
    inputs: InputsOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the plan here instead of stdout")] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    no_reuse: NoReuseOpt = False,
    mcp_config: McpConfigOpt = None,
) -> None:
    """Write a validated plan for a request (JSON on stdout, or --out FILE); runs nothing."""
    use_mcp_config(mcp_config)
    from orchestrator.plan.validate import validate_plan

    context = parse_context(inputs)

    async def make() -> tuple[Plan, PlanningReport, str]:
        async with _planner(provider, model, no_reuse) as planner:
            plan, report = await planner.plan_with_report(request, context, on_event=_print_note)
            return plan, report, validate_plan(plan, planner.registry).summary()

    plan, report, summary = run_async(make())
    text = plan_json(plan)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--out {out}: cannot write it ({exc.strerror})") from None
        stderr.print(f"wrote {out}", markup=False)
    stderr.print(f"{summary}; {cost_line(report)}", markup=False, highlight=False)


def ask_command(
    request: Annotated[str, typer.Argument(help="what to do, in plain language")],
    inputs: InputsOpt = None,
    as_json: JsonFlag = False,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="plan completely before running")] = False,
    no_reuse: NoReuseOpt = False,
    mcp_config: McpConfigOpt = None,
) -> None:
    """Plan a request and run it: steps start while the plan is being written; then results and cost."""
    use_mcp_config(mcp_config)
    from orchestrator.observability import StepTable, render_output

    context = parse_context(inputs)

    async def go(on_event: Any) -> PlannedRun:
        async with _planner(provider, model, no_reuse, stream=not no_stream) as planner:
            return await planner.run(request, context, on_event=on_event)

    if as_json:
        done = run_async(go(None))
        payload = {
            "plan": done.plan.model_dump(mode="json", exclude_defaults=True),
            "result": done.result.model_dump(mode="json"),
            "planning": done.planning.to_dict(),
        }
        print_json(payload)
    else:
        with StepTable(stderr, title=request, live=stderr.is_terminal) as table:
            done = run_async(go(table))
        render_output(done.result, stdout)
        stdout.print(cost_line(done.planning), markup=False, highlight=False)
    raise typer.Exit(0 if done.ok else 1)


__all__ = ["ask_command", "cost_line", "parse_context", "plan_command", "plan_json", "register"]
