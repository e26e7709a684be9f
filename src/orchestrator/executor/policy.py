"""Run-time policies: retry backoff and concurrency limits per tool and per worker kind."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.registry import ToolSpec


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits base * 2**(n-1), capped, times a random factor."""

    base_delay_s: float = 0.25
    max_delay_s: float = 10.0
    jitter: float = 0.5

    def delay(self, attempt: int) -> float:
        raw: float = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return raw * (1 - self.jitter * random.random())


# Small-model calls mostly wait on the model runner's own limit (SMALL_MODEL_CONCURRENCY); 16 in flight let the
# one-text calls of a for_each step gather into shared model calls.
DEFAULT_KIND_LIMITS: Mapping[str, int] = {"small_model": 16, "large_model": 4, "mcp": 16, "code": 2}


@dataclass(frozen=True)
class ConcurrencyLimits:
    """How many calls may run at once, per worker kind and per tool (a tool's own `concurrency` counts too)."""

    per_kind: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_KIND_LIMITS))
    per_tool: Mapping[str, int] = field(default_factory=dict)

    def unlimited(self, spec: ToolSpec) -> bool:
        """Whether calls of this tool hold no semaphore (what :meth:`Limiters.for_tool` gives is empty)."""
        return not self.per_kind.get(spec.kind.value) and not self.per_tool.get(spec.name, spec.concurrency)


class Limiters:
    """Semaphores for one run, created lazily inside the running loop."""

    def __init__(self, limits: ConcurrencyLimits):
        self._limits = limits
        self._kind: dict[str, asyncio.Semaphore] = {}
        self._tool: dict[str, asyncio.Semaphore] = {}
        self._for_tool: dict[str, tuple[asyncio.Semaphore, ...]] = {}

    def for_tool(self, spec: ToolSpec) -> tuple[asyncio.Semaphore, ...]:
        """The semaphores a call of this tool must hold: its kind's, then its own (always in that order)."""
        cached = self._for_tool.get(spec.name)
        if cached is not None:
            return cached
        sems: list[asyncio.Semaphore] = []
        kind_limit = self._limits.per_kind.get(spec.kind.value)
        if kind_limit:
            sems.append(self._kind.setdefault(spec.kind.value, asyncio.Semaphore(kind_limit)))
        tool_limit = self._limits.per_tool.get(spec.name, spec.concurrency)
        if tool_limit:
            sems.append(self._tool.setdefault(spec.name, asyncio.Semaphore(tool_limit)))
        result = self._for_tool[spec.name] = tuple(sems)
        return result
