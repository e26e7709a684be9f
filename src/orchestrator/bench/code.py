"""`orchestrator bench code`: latency of sandboxed code, with and without bubblewrap, pooled and cold.

Two snippets: a trivial one (``result = 1 + 1``) and a 10,000-element list transformation (the list is
passed in as an input, transformed, and the new list comes back as JSON). Each is run ``repeats`` times:

- ``pooled``: a pre-started sandbox is ready when the call comes (the pool is refilled, and waited for,
  between calls, as it is when calls are not back to back); the time is the call's, from taking the
  sandbox to having the result;
- ``cold``: the sandbox is started for the call (its start is in the time).

The baseline, measured in the same process, is starting a bare ``python -I -S -c pass`` (no sandbox, no
request): the ``ratio`` column compares each p50 with it. Target: trivial snippet, bwrap, pooled, p50 < 50 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from orchestrator.errors import ConfigurationError
from orchestrator.sandbox.launcher import SandboxConfig, interpreter_prefix
from orchestrator.sandbox.limits import CodeLimits
from orchestrator.sandbox.pool import SandboxPool, resolve_config, run_code

__all__ = ["SNIPPETS", "TARGET_P50_MS", "measure_code"]

TARGET_P50_MS = 50.0
XS = list(range(10_000))
SNIPPETS: dict[str, tuple[str, dict[str, Any]]] = {
    "trivial": ("result = 1 + 1", {}),
    "list 10k": ("result = [x * 2 + 1 for x in xs if x % 3]", {"xs": XS}),
}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def _timed(
    repeats: int, call: Callable[[], Awaitable[Any]], before: Callable[[], Awaitable[None]]
) -> list[float]:
    samples: list[float] = []
    for _ in range(repeats):
        await before()
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def _bare_python(repeats: int) -> list[float]:
    python, _ = interpreter_prefix(None)

    async def start() -> None:
        proc = await asyncio.create_subprocess_exec(python, "-I", "-S", "-c", "pass", env={})
        await proc.wait()

    async def nothing() -> None:
        return None

    return await _timed(repeats, start, nothing)


async def _rows_for(name: str, config: SandboxConfig, repeats: int, floor_ms: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    limits = CodeLimits(timeout_s=30)

    async def nothing() -> None:
        return None

    for snippet, (code, inputs) in SNIPPETS.items():
        pool = SandboxPool(config, size=1)
        try:
            pooled = await _timed(repeats, partial(_call, code, inputs, limits, pool=pool), pool.warm)
        finally:
            await pool.aclose()
        cold = await _timed(repeats, partial(_call, code, inputs, limits, config=config), nothing)
        for start, samples in (("pooled", pooled), ("cold", cold)):
            p50, p95 = _percentiles(samples)
            rows.append(
                {
                    "isolation": name,
                    "start": start,
                    "snippet": snippet,
                    "n": len(samples),
                    "p50_ms": round(p50, 2),
                    "p95_ms": round(p95, 2),
                    "ratio_p50_to_bare_python": round(p50 / floor_ms, 3) if floor_ms else None,
                }
            )
    return rows


async def _call(
    code: str,
    inputs: dict[str, Any],
    limits: CodeLimits,
    *,
    pool: SandboxPool | None = None,
    config: SandboxConfig | None = None,
) -> None:
    reply = await run_code(code, inputs, limits=limits, pool=pool, config=config)
    if not reply.ok:
        raise RuntimeError(f"benchmark snippet failed: {reply.error}")


async def measure_code(repeats: int = 30) -> dict[str, Any]:
    """Every figure of the benchmark (see the module docstring), as JSON data."""
    floor = await _bare_python(repeats)
    floor_p50, floor_p95 = _percentiles(floor)
    out: dict[str, Any] = {
        "repeats": repeats,
        "baseline": {
            "what": "bare `python -I -S -c pass` start",
            "p50_ms": round(floor_p50, 2),
            "p95_ms": round(floor_p95, 2),
        },
        "rows": [],
        "unavailable": {},
    }
    for name, mode in (("bwrap", "strict"), ("process", "process")):
        try:
            config = await resolve_config(isolation=mode)
        except ConfigurationError as exc:
            out["unavailable"][name] = str(exc)
            continue
        out["rows"].extend(await _rows_for(name, config, repeats, floor_p50))
    target = next(
        (r for r in out["rows"] if (r["isolation"], r["start"], r["snippet"]) == ("bwrap", "pooled", "trivial")), None
    )
    out["target"] = {
        "what": f"trivial snippet, bwrap, pooled: p50 < {TARGET_P50_MS:g} ms",
        "p50_ms": target["p50_ms"] if target else None,
        "met": bool(target and target["p50_ms"] < TARGET_P50_MS),
    }
    return out
