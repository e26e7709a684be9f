#!/usr/bin/env python
"""The large planner, end to end: a request in plain language is planned, run with live progress, and costed.

    python run_planner_demo.py "Process this receipt and categorize items" \\
        --input image_path=examples/receipts/cafe.txt
    python run_planner_demo.py            # interactive: one request per line

The plan streams in and each step starts as soon as it is written and its dependencies are done; the
table shows steps as they arrive. Then come the plan as a tree (tool, worker kind, dependencies), the
results, and what it cost: the planner's calls, the workers', and the total. Asking the same thing again
is served from the plan library with no model call.

Which planner is used: PLANNER_PROVIDER, else whichever of OPENAI_API_KEY, ANTHROPIC_API_KEY or Azure
OpenAI's key is set, else a local Ollama, else the offline plan library (known requests only); see
`.env.example`. Interactive commands: a request plans and runs it; `:plan REQUEST` plans only and shows
the tree; `:run` runs the last plan; `:input NAME=VALUE` sets an input for what follows; `:inputs`;
`:history`; `:help`; `:quit` (or end of input). Lines come from stdin, so a script can drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from orchestrator.commands.planning import cost_line, parse_context
from orchestrator.context import Usage
from orchestrator.errors import OrchestratorError, UserError
from orchestrator.executor import RunResult, execute_plan
from orchestrator.observability import StepTable, configure_logging, render_output
from orchestrator.plan.model import Plan
from orchestrator.plan.validate import validate_plan
from orchestrator.planner import LargePlanner, PlanningReport
from orchestrator.planner.progress import plan_tree
from orchestrator.settings import Settings, use_settings

HELP = (
    "type a request to plan and run it · :plan REQUEST plans only · :run runs the last plan · "
    ":input NAME=VALUE · :inputs · :history · :quit"
)


class Demo:
    """One planner for the session, so the plan library and the model client are shared."""

    def __init__(self, planner: LargePlanner, context: dict[str, Any], out: Console, err: Console) -> None:
        self.planner = planner
        self.context = context
        self.out = out
        self.err = err
        self.history: list[str] = []
        self.last_plan: Plan | None = None

    async def ask(self, request: str) -> bool:
        """Plan and run `request`, showing progress, the plan tree, the results and the cost."""
        self.history.append(request)
        with StepTable(self.err, title=request, live=self.err.is_terminal) as table:
            done = await self.planner.run(request, self.context, on_event=table)
        self.last_plan = done.plan
        self.out.print(Text("the plan", style="bold"))
        self.out.print(plan_tree(done.plan, self.planner.registry))
        self.show_result(done.result, done.planning)
        return done.ok

    async def plan_only(self, request: str) -> None:
        """Plan `request` without running it, and show the tree."""
        self.history.append(f":plan {request}")
        plan, report = await self.planner.plan_with_report(request, self.context, on_event=self._note)
        self.last_plan = plan
        self.out.print(plan_tree(plan, self.planner.registry))
        self.out.print(cost_line(report), markup=False, highlight=False)

    async def run_last(self) -> bool:
        """Run the last plan again (no planning)."""
        if self.last_plan is None:
            self.err.print("no plan yet: type a request, or :plan REQUEST")
            return False
        compiled = validate_plan(self.last_plan, self.planner.registry)
        with StepTable(self.err, title=self.last_plan.goal or "plan", live=self.err.is_terminal) as table:
            table.add_plan(compiled)
            result = await execute_plan(compiled, self.context, registry=self.planner.registry, on_event=table)
        self.show_result(result, None)
        return result.ok

    def show_result(self, result: RunResult, planning: PlanningReport | None) -> None:
        render_output(result, self.out)
        planner_usage = planning.usage if planning is not None else Usage()
        workers = result.usage.cost_usd - planner_usage.cost_usd
        if planning is not None:
            self.out.print(cost_line(planning), markup=False, highlight=False)
        self.out.print(
            f"cost: planner ${planner_usage.cost_usd:.4f} + workers ${max(workers, 0.0):.4f} "
            f"= ${result.usage.cost_usd:.4f} · large-model calls: {planner_usage.calls}",
            markup=False,
            highlight=False,
        )

    def _note(self, event: Any) -> None:
        data = getattr(event, "data", None)
        if isinstance(data, dict) and data.get("kind") != "step_planned":
            self.err.print(Text(f"· {event.message}", style="cyan"))

    async def interactive(self) -> int:
        """Read commands from stdin until :quit or end of input."""
        self.err.print(HELP, markup=False)
        while True:
            # Blocking read on purpose: nothing else runs between commands, and Ctrl-C stays immediate.
            line = _read_line("request> " if sys.stdin.isatty() else "")
            if line is None:
                return 0
            line = line.strip()
            if not line:
                continue
            try:
                if await self.command(line):
                    return 0
            except OrchestratorError as exc:
                self.err.print(f"{'error' if isinstance(exc, UserError) else 'failed'}: {exc}", markup=False)

    async def command(self, line: str) -> bool:
        """Do one interactive line; True means quit."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in (":quit", ":q", ":exit"):
            return True
        if word == ":help":
            self.err.print(HELP, markup=False)
        elif word == ":history":
            for number, request in enumerate(self.history, 1):
                self.out.print(f"{number:3}  {request}", markup=False, highlight=False)
        elif word == ":inputs":
            self.out.print(self.context or "no inputs set", markup=False)
        elif word == ":input":
            self.context.update(parse_context([rest]))
        elif word == ":plan":
            if rest:
                await self.plan_only(rest)
            elif self.last_plan is not None:
                self.out.print(plan_tree(self.last_plan, self.planner.registry))
            else:
                self.err.print("no plan yet: :plan REQUEST")
        elif word == ":run":
            await (self.ask(rest) if rest else self.run_last())
        elif word.startswith(":"):
            self.err.print(f"unknown command {word}; {HELP}", markup=False)
        else:
            await self.ask(line)
        return False


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("request", nargs="?", help="what to do, in plain language (none: interactive)")
    parser.add_argument("--input", "-i", action="append", default=[], help="a plan input, NAME=VALUE (repeatable)")
    parser.add_argument("--provider", "-p", help="openai, anthropic, ollama, openai_compatible, azure_openai, library")
    parser.add_argument("--model", "-m", help="the planner model (default: PLANNER_MODEL)")
    parser.add_argument("--no-stream", action="store_true", help="plan completely before running")
    args = parser.parse_args(argv)
    configure_logging()
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    try:
        import readline  # noqa: F401  (arrow keys and history for input(), where available)
    except ImportError:  # pragma: no cover - Windows
        pass
    try:
        with use_settings(Settings.from_env()):
            return asyncio.run(_session(args, out, err))
    except KeyboardInterrupt:
        err.print("interrupted: running steps were cancelled")
        return 130
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except OrchestratorError as exc:
        err.print(f"failed: {exc}", markup=False, highlight=False)
        return 1


async def _session(args: argparse.Namespace, out: Console, err: Console) -> int:
    context = parse_context(args.input)
    async with LargePlanner(args.provider, args.model, stream=not args.no_stream) as planner:
        demo = Demo(planner, context, out, err)
        if args.request:
            return 0 if await demo.ask(args.request) else 1
        return await demo.interactive()


if __name__ == "__main__":
    sys.exit(main())
