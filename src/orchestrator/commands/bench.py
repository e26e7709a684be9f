"""`orchestrator bench ...`: benchmarks that report ratios against a baseline run in the same process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.commands._common import ExecutorOpt, JsonFlag, print_json, run_async, stderr, stdout
from orchestrator.errors import ConfigurationError, InputError

bench_app = typer.Typer(help="Benchmarks (no subcommand: scheduler overhead against a plain asyncio floor).")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="median of this many runs per figure")] = 5,
    scale: Annotated[bool, typer.Option("--scale", help="also time real plans of 1k, 10k and 50k steps")] = False,
    only: Annotated[
        str | None, typer.Option(help="run one part: 'scheduler' (no-op and 10 ms rows) or 'real' (real plans)")
    ] = None,
) -> None:
    """Scheduler overhead and real plans (validation included) against a plain asyncio floor."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.bench.scheduler import linear, measure_scale, run_all, run_real

    if only not in (None, "scheduler", "real"):
        raise InputError(f"--only {only!r}: expected 'scheduler' or 'real'")

    async def measure() -> dict[str, Any]:
        rows = await run_all(repeats=repeats) if only != "real" else []
        real = await run_real(repeats=repeats) if only != "scheduler" else []
        scaled = await measure_scale() if scale else []
        return {"scheduler": rows, "real_plans": real, "scale": scaled}

    figures = run_async(measure())
    rows, real, scaled = figures["scheduler"], figures["real_plans"], figures["scale"]
    met = all(r.met for r in rows) and all(r.met for r in real) and (not scaled or linear(scaled))
    if as_json:
        print_json(
            {
                "scheduler": [row.model_dump() for row in rows],
                "real_plans": [row.model_dump() for row in real],
                "scale": [row.model_dump() for row in scaled] or None,
                "linear": linear(scaled) if scaled else None,
                "all_met": met,
            }
        )
        return
    if rows:
        _scheduler_table(rows)
    if real:
        _real_table(real)
    if scaled:
        _scale_table(scaled, linear(scaled))


def _mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]over[/]"


def _scheduler_table(rows: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="scheduler overhead vs a plain asyncio ready-queue floor (medians)", show_edge=False)
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
            _mark(row.met),
        )
    stdout.print(table)
    stdout.print("ratio: no-op steps, overhead vs the floor's (target <= 2x); 10 ms steps, makespan (target <= 1.05x)")


def _real_table(rows: list[Any]) -> None:
    title = "real plans: execute_plan(plan dict), validation included, typed tool, step: references (medians)"
    from rich.table import Table

    table = Table(title=title, show_edge=False)
    columns = ("dag", "n", "µs/step", "floor", "ratio", "CPU ratio", "of which validate", "full validator", "path")
    for col in (*columns, "KiB/step", "floor KiB", ""):
        table.add_column(col, justify="left" if col == "dag" else "right")
    for row in rows:
        table.add_row(
            row.dag,
            str(row.steps),
            f"{row.us_per_step:.1f}",
            f"{row.floor_us_per_step:.1f}",
            f"{row.ratio:.2f}x",
            f"{row.cpu_ratio:.2f}x",
            f"{row.validate_us_per_step:.1f}",
            f"{row.full_validate_us_per_step:.1f}",
            "fast" if row.fast_path else "full",
            f"{row.kib_per_step:.2f}",
            f"{row.floor_kib_per_step:.2f}",
            _mark(row.met),
        )
    stdout.print(table)
    stdout.print("targets: time per step <= 2x the floor's (same data, same function); memory <= 2 KiB per step")
    stdout.print("CPU ratio: the same, in CPU time of this process (less swayed by the machine's other load)")
    stdout.print("full validator: validate_plan on the same plan; path: execute_plan's fast path, or the full one")


def _scale_table(rows: list[Any], is_linear: bool) -> None:
    from rich.table import Table

    table = Table(title="real plans as they grow (layered, 50 wide; medians)", show_edge=False)
    for col in ("steps", "validate µs/step", "execute µs/step"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(f"{row.steps:,}", f"{row.validate_us_per_step:.1f}", f"{row.execute_us_per_step:.1f}")
    stdout.print(table)
    stdout.print(f"linear (largest within 2x the smallest, per step): {_mark(is_linear)}")


@bench_app.command("store")
def bench_store(
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="receipt texts for the pipeline row; default: ../shared SROIE or examples"),
    ] = None,
    receipts: Annotated[int, typer.Option(min=0, max=1000, help="receipts in the pipeline row")] = 50,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="best of this many runs per figure")] = 3,
    sync: Annotated[str, typer.Option(help="the store's SQLite synchronous level: normal or full")] = "normal",
    as_json: JsonFlag = False,
) -> None:
    """The run store's overhead per step: the same plans with and without recording, in one process."""
    from rich.table import Table

    from orchestrator.bench.receipts import default_folder
    from orchestrator.bench.store import measure_store

    if sync not in ("normal", "full"):
        raise InputError(f"--sync {sync!r}: expected normal or full")
    texts = sorted((folder or default_folder()).glob("*.txt"))[:receipts]
    rows = run_async(measure_store(texts, repeats=repeats, sync=sync))
    if as_json:
        print_json([row.model_dump() for row in rows])
        return
    table = Table(title=f"run store overhead (synchronous={sync}; best of {repeats})", show_edge=False)
    for col in ("plan", "steps", "no store ms", "store ms", "µs/step", "ratio"):
        table.add_column(col, justify="left" if col == "plan" else "right")
    for row in rows:
        table.add_row(row.plan, str(row.steps), f"{row.no_store_s * 1000:.1f}", f"{row.store_s * 1000:.1f}",
                      f"{row.overhead_us_per_step:.1f}", f"{row.ratio:.2f}x")  # fmt: skip
    stdout.print(table)


@bench_app.command("receipts")
def bench_receipts(
    folder: Annotated[
        Path | None, typer.Option("--dir", help="receipts (.txt and images); default: ../shared SROIE or examples")
    ] = None,
    images: Annotated[int, typer.Option(min=0, help="how many images to OCR per back-end (0: skip OCR)")] = 10,
    ocr: Annotated[str, typer.Option(help="comma-separated OCR back-ends to measure")] = "rapidocr,tesseract",
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            help="rapidocr only: time detection, classification and recognition per image size, and compare "
            "engine settings (images/s before and after, and whether the parsed fields stay the same)",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Receipts per second: parse + categorize from text (through the executor), and OCR per back-end."""
    from orchestrator.bench.receipts import default_folder, measure_ocr_backends, measure_text_pipeline

    folder = folder or default_folder()
    if profile:
        _profile_rapidocr(folder, images, as_json)
        return
    texts = sorted(folder.glob("*.txt"))
    pictures = _pictures(folder, images)
    if not texts:
        raise InputError(f"{folder}: no .txt receipts to benchmark")
    backends = [b.strip().lower() for b in ocr.split(",") if b.strip()]
    text_row = run_async(measure_text_pipeline(texts))
    ocr_rows = run_async(measure_ocr_backends(pictures, backends)) if pictures else []
    settings = _rapidocr_before_and_now(pictures) if pictures and "rapidocr" in backends else None
    if as_json:
        print_json({"folder": str(folder), "text": text_row, "ocr": ocr_rows, "rapidocr_settings": settings})
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
    if settings is not None and "error" in settings:
        stdout.print(f"  rapidocr before -> now: unavailable: {settings['error']}")
    elif settings is not None:
        title = f"rapidocr engine settings before -> now, same {settings['images']} images, interleaved"
        stdout.print(_settings_table(settings, title))


def _rapidocr_before_and_now(pictures: list[Path]) -> dict[str, Any]:
    """The old rapidocr settings against the back-end's own on the same images (or why they cannot run)."""
    from orchestrator.bench.ocr import BEFORE_AND_NOW, profile_rapidocr
    from orchestrator.workers.receipts.ocr_backends.base import OCR_EXTRA_HINT

    try:
        with stderr.status(f"rapidocr before and now on {len(pictures)} images"):
            return profile_rapidocr(pictures, BEFORE_AND_NOW)
    except ImportError as exc:
        return {"error": f"{exc.name} is not installed; {OCR_EXTRA_HINT}"}
    except ConfigurationError as exc:
        return {"error": str(exc)}


@bench_app.command("batch")
def bench_batch(
    documents: Annotated[int, typer.Option("--documents", "-n", min=1, max=1_000_000, help="text receipts")] = 1000,
    executor: ExecutorOpt = "local",
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="documents at a time (per worker on Ray)")] = 8,
    as_json: JsonFlag = False,
) -> None:
    """Scale: N text receipts, parse + categorize, results recorded: docs/s, p50/p99, peak memory, store share."""
    from orchestrator.bench.batch import measure_batch
    from orchestrator.cluster import check_executor, open_executor

    name = check_executor(executor)
    figures = run_async(measure_batch(documents, executor=lambda: open_executor(name), concurrency=concurrency))
    if as_json:
        print_json(figures.model_dump())
        return
    stdout.print(
        f"{figures.documents:,} text receipts ({figures.sources}), parse + categorize, executor {figures.executor} "
        f"({figures.workers} worker(s), {figures.concurrency} documents at a time each):"
    )
    stdout.print(
        f"  {figures.docs_per_s:,.1f} docs/s ({figures.seconds:.1f}s); per document p50 {figures.p50_ms:.1f} ms, "
        f"p99 {figures.p99_ms:.1f} ms; {figures.failed} failed"
    )
    workers = ", ".join(f"{mib:.0f}" for mib in figures.worker_peak_mib.values())
    stdout.print(f"  peak memory: driver {figures.driver_peak_mib:.0f} MiB; workers {workers} MiB")
    stdout.print(
        f"  run store: {figures.store_seconds:.2f}s, {figures.store_share:.1%} of the wall time "
        f"({figures.recorded:,} documents recorded); output lines {figures.output_seconds:.2f}s"
    )
    stdout.print(
        f"  driver CPU {figures.driver_cpu_ms_per_doc:.2f} ms/doc: one driver core tops out near "
        f"{figures.driver_ceiling_docs_per_s:,.0f} docs/s; "
        f"the store near {figures.store_ceiling_docs_per_s:,.0f} docs/s"
    )


def _profile_rapidocr(folder: Path, images: int, as_json: bool) -> None:
    from rich.table import Table

    from orchestrator.bench.ocr import profile_rapidocr

    pictures = _pictures(folder, max(images, 1))
    if not pictures:
        raise InputError(f"{folder}: no images to profile")
    with stderr.status(f"profiling rapidocr on {len(pictures)} images"):
        report = profile_rapidocr(pictures)
    if as_json:
        print_json(report)
        return
    stdout.print(_settings_table(report, f"rapidocr on {len(pictures)} images of {folder}, settings interleaved"))
    sizes = Table(title="seconds per image by size: the first setting -> the last", show_edge=False)
    for col in ("megapixels", "boxes", "detect s", "recognise s"):
        sizes.add_column(col, justify="right")
    for row in report["by_size"]:
        sizes.add_row(
            f"{row['megapixels']:.2f}",
            str(row["boxes"]),
            f"{row['det_s']:.2f} -> {row['det_s_last']:.2f}",
            f"{row['rec_s']:.2f} -> {row['rec_s_last']:.2f}",
        )
    stdout.print(sizes)


def _pictures(folder: Path, images: int) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:images]


def _settings_table(report: dict[str, Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, show_edge=False)
    columns = ("setting", "images/s", "vs the first", "CPU s", "CPU vs the first", "detect s", "classify s")
    for col in (*columns, "recognise s", "other s", "same fields", "same text", "similarity"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for row in report["rows"]:
        table.add_row(
            str(row["config"]),
            f"{row['images_per_s']:.2f}",
            f"{row['speedup']:.2f}x",
            f"{row['cpu_s']:.2f}",
            f"{row['cpu_speedup']:.2f}x",
            f"{row['det_s']:.2f}",
            f"{row['cls_s']:.2f}",
            f"{row['rec_s']:.2f}",
            f"{row['other_s']:.2f}",
            f"{row['same_fields']:.0%}",
            f"{row['same_text']:.0%}",
            f"{row['text_similarity']:.3f}",
        )
    return table


@bench_app.command("planner")
def bench_planner(
    tokens_per_s: Annotated[
        list[float] | None, typer.Option("--tokens-per-s", help="fake model writing speeds (repeatable)")
    ] = None,
    docs: Annotated[int, typer.Option(min=1, help="receipts actually run in the batch measurement")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Streaming planner: time to first step vs full plan; large-model calls per batch; cost per 1,000 docs."""
    from rich.table import Table

    from orchestrator.bench.planner import measure_batch, measure_streaming

    async def measure() -> dict[str, object]:
        speeds = tokens_per_s or [40.0, 80.0]
        streaming = [await measure_streaming(tokens_per_s=speed) for speed in speeds]
        return {"streaming": streaming, "batch": await measure_batch(n_docs=docs)}

    figures = run_async(measure())
    if as_json:
        print_json(figures)
        return
    table = Table(title="streaming plan execution (fake OpenAI server; simulated 0.3 s workers)", show_edge=False)
    for col in ("tokens/s", "first step: streamed", "not streamed", "full plan", "total: streamed", "not streamed"):
        table.add_column(col, justify="right")
    for row in figures["streaming"]:  # type: ignore[attr-defined]
        s, p = row["streaming"], row["non_streaming"]
        table.add_row(
            f"{row['tokens_per_s']:g}",
            f"{s['first_step_started_s']:.2f}s",
            f"{p['first_step_started_s']:.2f}s",
            f"{s['plan_complete_s']:.2f}s",
            f"{s['total_s']:.2f}s",
            f"{p['total_s']:.2f}s",
        )
    stdout.print(table)
    stdout.print_json(data=figures["batch"])


@bench_app.command("models")
def bench_models(
    items: Annotated[int, typer.Option(min=1, max=2000, help="distinct item names to categorize")] = 48,
    latency_ms: Annotated[
        tuple[int, int], typer.Option(help="fake server: per-call latency range in ms (low high)")
    ] = (200, 400),
    tokens_per_s: Annotated[float, typer.Option(min=1, help="fake server: generation speed")] = 150.0,
    batch_size: Annotated[int, typer.Option(min=1, max=200, help="items per model call")] = 16,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="model calls in flight")] = 4,
    gather_ms: Annotated[
        float, typer.Option(min=0, max=1000, help="for_each rows: how long a request waits for others")
    ] = 10.0,
    backends: Annotated[str, typer.Option(help="comma-separated: keywords, embedded, llm")] = "keywords,embedded,llm",
    as_json: JsonFlag = False,
) -> None:
    """Items/s: keywords, the embedded model, an LLM (fake Ollama): unbatched, batched, concurrent, cached, for_each."""
    from rich.table import Table

    from orchestrator.bench.models import measure_models

    low, high = sorted(latency_ms)
    figures = run_async(
        measure_models(
            n_items=items,
            latency_s=(low / 1000, high / 1000),
            tokens_per_s=tokens_per_s,
            batch_size=batch_size,
            concurrency=concurrency,
            gather_ms=gather_ms,
            backends=[name.strip() for name in backends.split(",") if name.strip()],
        )
    )
    if as_json:
        print_json(figures)
        return
    title = (
        f"categorizing {figures['items']} item names: items per second "
        f"(LLM: fake Ollama, {low}-{high} ms per call + {tokens_per_s:g} tokens/s)"
    )
    table = Table(title=title, show_edge=False)
    for col in ("back-end", "mode", "items", "seconds", "items/s", "model calls"):
        table.add_column(col, justify="left" if col in ("back-end", "mode") else "right")
    for row in figures["rows"]:
        if "error" in row:
            table.add_row(row["backend"], f"unavailable: {row['error']}", "", "", "", "")
            continue
        load = f" (load {row['load_s']:.1f}s, not counted)" if "load_s" in row else ""
        table.add_row(
            row["backend"],
            row["mode"] + load,
            str(row["items"]),
            f"{row['seconds']:.3f}",
            f"{row['items_per_s']:,.1f}" if row["items_per_s"] is not None else "-",
            str(row["calls"]),
        )
    stdout.print(table)


@bench_app.command("startup")
def bench_startup(
    rounds: Annotated[int, typer.Option(min=1, max=50, help="rounds; the figures are medians over them")] = 7,
    as_json: JsonFlag = False,
) -> None:
    """Start-up: --help, validate and tools, as ratios to importing pydantic, rich and typer (target <= 3x)."""
    from rich.table import Table

    from orchestrator.bench.startup import measure_startup

    report = measure_startup(rounds)
    if as_json:
        print_json(report.model_dump())
        return
    table = Table(title=f"start-up vs {report.baseline} (median of {report.rounds} rounds)", show_edge=False)
    for col in ("command", "median s", "ratio", "CPU ratio", ""):
        table.add_column(col, justify="left" if col == "command" else "right")
    table.add_row("baseline", f"{report.baseline_median_s:.3f}", "1.00x", "1.00x", "")
    table.add_row("floor: a typer command + a pydantic model", "", f"{report.floor_ratio:.2f}x", "", "")
    for row in report.rows:
        verdict = "[green]ok[/]" if row.met else "[red]over[/]"
        table.add_row(row.command, f"{row.median_s:.3f}", f"{row.ratio:.2f}x", f"{row.cpu_ratio:.2f}x", verdict)
    stdout.print(table)
    stdout.print(
        f"ratio: median of per-round wall-time ratios to the baseline (target <= {report.rows[0].target:g}x); "
        "CPU ratio: the same with the processes' CPU time"
    )


@bench_app.command("mcp")
def bench_mcp(
    calls: Annotated[int, typer.Option(min=10, max=100_000, help="calls per measurement")] = 500,
    transports: Annotated[str, typer.Option(help="comma-separated: stdio, http")] = "stdio,http",
    timeout: Annotated[float, typer.Option(min=1, max=86_400, help="seconds each transport may take")] = 600,
    as_json: JsonFlag = False,
) -> None:
    """Per-call overhead of an MCP tool vs the same function in process (stdio, HTTP); calls/s at 1, 8, 32."""
    from orchestrator.mcp_bridge.bench import measure_mcp

    chosen = [t.strip() for t in transports.split(",") if t.strip()]
    unknown = sorted(set(chosen) - {"stdio", "http"})
    if unknown:
        raise InputError(f"--transports: unknown {', '.join(unknown)}; choose from stdio, http")
    figures = run_async(measure_mcp(calls=calls, transports=chosen, timeout_s=timeout))
    if as_json:
        print_json(figures)
        return
    from rich.table import Table

    table = Table(title=f"MCP call cost: {figures['tool']} (median of 5 x {calls} calls)", show_edge=False)
    for col in ("transport", "ms/call", "overhead ms", "CPU ms/call", "CPU overhead", "calls/s @1", "@8", "@32"):
        table.add_column(col, justify="left" if col == "transport" else "right")
    for row in figures["rows"]:
        rates = row["calls_per_s"]
        table.add_row(
            row["transport"],
            f"{row['per_call_ms']:.3f}",
            f"{row['overhead_ms']:.3f}",
            f"{row['cpu_ms']:.3f}",
            f"{row['cpu_overhead_ms']:.3f}",
            *(f"{rates.get(k, 0):,.0f}" for k in ("1", "8", "32")),
        )
    stdout.print(table)
    stdout.print(
        f"target: stdio overhead <= {figures['target_stdio_overhead_ms']:g} ms per call. CPU: this process's plus "
        f"the server's, which the machine's load (now {figures['load']}) does not inflate as it does wall time."
    )


@bench_app.command("code")
def bench_code(
    repeats: Annotated[int, typer.Option(min=3, max=1000, help="calls per figure")] = 30,
    as_json: JsonFlag = False,
) -> None:
    """Sandboxed code latency (p50/p95): trivial and 10k-list snippets, bwrap and process-level, pooled and cold."""
    from rich.table import Table

    from orchestrator.bench.code import measure_code

    figures = run_async(measure_code(repeats=repeats))
    if as_json:
        print_json(figures)
        return
    base = figures["baseline"]
    table = Table(title=f"code_exec latency over {repeats} calls each (ms)", show_edge=False)
    for col in ("isolation", "start", "snippet", "p50", "p95", "p50 / bare python"):
        table.add_column(col, justify="left" if col in ("isolation", "start", "snippet") else "right")
    for row in figures["rows"]:
        table.add_row(
            row["isolation"],
            row["start"],
            row["snippet"],
            f"{row['p50_ms']:.1f}",
            f"{row['p95_ms']:.1f}",
            f"{row['ratio_p50_to_bare_python']:.2f}x",
        )
    stdout.print(table)
    stdout.print(f"baseline: {base['what']}: p50 {base['p50_ms']:.1f} ms, p95 {base['p95_ms']:.1f} ms")
    for name, reason in figures["unavailable"].items():
        stdout.print(f"{name}: unavailable: {reason}", markup=False)
    target = figures["target"]
    verdict = "[green]met[/]" if target["met"] else "[red]not met[/]"
    stdout.print(f"target: {target['what']}: {target['p50_ms']} ms, {verdict}")
