"""The `orchestrator` command: a thin layer over the async API.

Exit codes: 0 success; 1 the run did not fully succeed; 2 a user error (bad plan, input, setting);
130 interrupted. A user error is one message on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from orchestrator.errors import InputError, OrchestratorError, PlanValidationError, UserError
from orchestrator.executor import parse_input_pairs, prepare_inputs, run_compiled
from orchestrator.observability import StepTable, configure_logging, render_output
from orchestrator.plan.model import plan_json_schema
from orchestrator.plan.validate import load_plan
from orchestrator.registry import ToolRegistry, default_registry

T = TypeVar("T")

app = typer.Typer(
    name="orchestrator",
    help="A large model plans, small models work: validate and run JSON execution plans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
bench_app = typer.Typer(help="Benchmarks (no subcommand: scheduler overhead against a plain asyncio floor).")
app.add_typer(bench_app, name="bench")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout and nothing else")]
InputsOpt = Annotated[
    list[str] | None, typer.Option("--input", "-i", help="a plan input as NAME=VALUE (repeatable)", show_default=False)
]


def registry() -> ToolRegistry:
    return default_registry()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@app.command()
def run(
    plan: Annotated[Path, typer.Argument(help="plan file (JSON)")],
    inputs: InputsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a plan with live per-step progress, then print its output."""
    tools = registry()
    compiled = load_plan(plan, tools)
    values = prepare_inputs(compiled.plan.inputs, parse_input_pairs(inputs or [], compiled.plan.inputs))
    if as_json:
        result, _ = run_async(run_compiled(compiled, values))
        print_json(result.model_dump(mode="json"))
    else:
        with StepTable(compiled, stderr) as table:
            result, _ = run_async(run_compiled(compiled, values, on_event=table))
        render_output(result, stdout)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def batch(
    plan: Annotated[Path, typer.Argument(help="plan file (JSON)")],
    source: Annotated[str, typer.Argument(help="a folder, a glob (quote it) or a file")],
    input_name: Annotated[str, typer.Option("--input", help="the plan input each document's path is bound to")],
    out: Annotated[Path | None, typer.Option(help="write JSON lines here (default: stdout)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="documents at a time")] = 4,
    set_inputs: Annotated[
        list[str] | None, typer.Option("--set", help="another plan input as NAME=VALUE (repeatable)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="skip documents already written as succeeded in --out")] = False,
) -> None:
    """Run one plan over every document (planned or loaded once), one JSON line per document."""
    from orchestrator.batch import find_documents, resume_set, run_batch

    tools = registry()
    compiled = load_plan(plan, tools)
    extra = parse_input_pairs(set_inputs or [], compiled.plan.inputs)
    documents = find_documents(source)
    if not documents:
        raise InputError(f"{source}: no documents found")
    skip = resume_set(out, resume)
    sink = out.open("a" if resume else "w", encoding="utf-8") if out is not None else sys.stdout
    try:
        with _progress() as progress:
            task = progress.add_task("documents", total=len(documents), completed=len(skip & set(map(str, documents))))

            def advance(record: Any) -> None:
                progress.advance(task)
                if record.status != "succeeded":
                    progress.console.print(f"[red]✗[/] {record.document}: {record.error}", markup=True, highlight=False)

            summary = run_async(
                run_batch(
                    compiled,
                    documents,
                    input_name,
                    inputs=extra,
                    concurrency=concurrency,
                    out=sink,
                    skip=skip,
                    on_document=advance,
                )
            )
    finally:
        if out is not None:
            sink.close()
    summary.out = str(out) if out else None
    stderr.print(
        f"{summary.succeeded} succeeded, {summary.failed} failed, {summary.skipped} already done "
        f"of {summary.total} in {summary.duration_s:.1f}s ({summary.docs_per_s:.2f} docs/s)"
        + (f", ${summary.usage.cost_usd:.4f}" if summary.usage.cost_usd else "")
        + (f"; results in {out}" if out else "")
    )
    raise typer.Exit(0 if summary.failed == 0 else 1)


class RateColumn(ProgressColumn):
    """Documents per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- docs/s" if speed is None else f"{speed:.2f} docs/s", style="cyan")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
    )


@app.command()
def validate(plans: Annotated[list[Path], typer.Argument(help="plan files to check")]) -> None:
    """Check plans against the format and the tool registry, listing every problem; runs nothing."""
    tools = registry()
    failed = 0
    for path in plans:
        try:
            compiled = load_plan(path, tools)
        except UserError as exc:
            failed += 1
            stderr.print(str(exc), markup=False, highlight=False)
            continue
        stdout.print(f"{path}: {compiled.summary()}" if len(plans) > 1 else compiled.summary(), markup=False)
    raise typer.Exit(2 if failed else 0)


@app.command()
def tools(as_json: JsonFlag = False) -> None:
    """List the registered tools (with --json: the catalog with schemas that the planner is given)."""
    catalog = registry().catalog()
    if as_json:
        print_json([spec.model_dump(mode="json") for spec in catalog])
        return
    table = Table(show_edge=False)
    table.add_column("tool", style="bold")
    table.add_column("kind")
    table.add_column("arguments")
    table.add_column("description", overflow="fold")
    for spec in catalog:
        props = spec.input_schema.get("properties", {})
        required = set(spec.input_schema.get("required", []))
        args = ", ".join(f"{n}{'' if n in required else '?'}" for n in props)
        table.add_row(spec.name, spec.kind.value, args, spec.description.splitlines()[0] if spec.description else "")
    stdout.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the plan format."""
    print_json(plan_json_schema())


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="best of this many runs per figure")] = 5,
) -> None:
    """Scheduler overhead: chain, fan-out and layered DAGs, no-op and 10 ms steps, against the floor."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.bench.scheduler import run_all, within_target

    rows = run_async(run_all(repeats=repeats))
    if as_json:
        print_json([row.model_dump() for row in rows])
        return
    table = Table(title="scheduler overhead vs a plain asyncio ready-queue floor (best of runs)", show_edge=False)
    for col in ("dag", "step", "n", "ms", "ideal", "floor ms", "µs/step", "floor", "ratio", ""):
        table.add_column(col, justify="left" if col in ("dag", "step") else "right")
    for row in rows:
        ratio = f"{row.overhead_ratio:.2f}x" if row.step == "noop" else f"{row.makespan_ratio:.3f}x"
        table.add_row(
            row.dag,
            row.step,
            str(row.steps),
            f"{row.makespan_s * 1000:.1f}",
            f"{row.ideal_s * 1000:.0f}",
            f"{row.floor_makespan_s * 1000:.1f}",
            f"{row.overhead_us_per_step:.1f}",
            f"{row.floor_overhead_us_per_step:.1f}",
            ratio,
            "[green]ok[/]" if within_target(row) else "[red]over[/]",
        )
    stdout.print(table)
    stdout.print("ratio: no-op steps, overhead vs the floor's (target <= 2x); 10 ms steps, makespan (target <= 1.05x)")


@bench_app.command("receipts")
def bench_receipts(
    folder: Annotated[
        Path | None, typer.Option("--dir", help="receipts (.txt and images); default: ../shared SROIE or examples")
    ] = None,
    images: Annotated[int, typer.Option(min=0, help="how many images to OCR per back-end (0: skip OCR)")] = 10,
    ocr: Annotated[str, typer.Option(help="comma-separated OCR back-ends to measure")] = "rapidocr,tesseract",
    as_json: JsonFlag = False,
) -> None:
    """Receipts per second: parse + categorize from text (through the executor), and OCR per back-end."""
    from orchestrator.bench.receipts import default_folder, measure_ocr_backends, measure_text_pipeline

    folder = folder or default_folder()
    texts = sorted(folder.glob("*.txt"))
    pictures = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:images]
    if not texts:
        raise InputError(f"{folder}: no .txt receipts to benchmark")
    text_row = run_async(measure_text_pipeline(texts))
    ocr_rows = run_async(measure_ocr_backends(pictures, [b for b in ocr.split(",") if b])) if pictures else []
    if as_json:
        print_json({"folder": str(folder), "text": text_row, "ocr": ocr_rows})
        return
    stdout.print(
        f"{folder}: parse + categorize from text: {text_row['docs_per_s']:.1f} receipts/s "
        f"({text_row['n']} receipts, best of 3, {text_row['concurrency']} at a time)"
    )
    for row in ocr_rows:
        if "error" in row:
            stdout.print(f"  OCR {row['backend']}: unavailable: {row['error']}")
        else:
            stdout.print(
                f"  OCR {row['backend']}: {row['docs_per_s']:.2f} images/s over {row['n']} images "
                f"(engine load {row['warmup_seconds']:.1f}s, not counted)"
            )


def _register_commands() -> None:
    from orchestrator.commands import evaluation

    evaluation.register(eval_app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app, turning errors into messages and exit codes."""
    configure_logging()
    try:
        code = app(args=argv, standalone_mode=False, prog_name="orchestrator")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        stderr.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer vendors click, so catch its public base
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            stderr.print(f"error: {exc}", markup=False)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        stderr.print("interrupted: running steps were cancelled")
        return 130
    except PlanValidationError as exc:
        stderr.print(str(exc), markup=False, highlight=False)
        return 2
    except UserError as exc:
        stderr.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except OrchestratorError as exc:
        stderr.print(f"failed: {exc}", markup=False, highlight=False)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
