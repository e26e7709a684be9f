"""A spending account for model calls: once ``budget_usd`` is spent, nothing escalates further.

One :class:`Budget` is shared by everything in a run (or a whole batch): it lives in the run's
:class:`~orchestrator.run_scope.RunScope`, see there. Escalation checks :attr:`Budget.exhausted` before
each paid call and charges the call's cost after it, so a budget is overshot by at most the calls already
in flight when it ran out.
"""

from __future__ import annotations

from orchestrator.errors import ConfigurationError

__all__ = ["Budget"]


class Budget:
    """Money spent on model calls, against an optional limit in US dollars."""

    __slots__ = ("calls", "limit_usd", "spent_usd", "stopped")

    def __init__(self, limit_usd: float | None = None) -> None:
        """Start an account.

        Args:
            limit_usd: Stop escalating once this much is spent; None counts spend without a limit.
        """
        if limit_usd is not None and limit_usd < 0:
            raise ConfigurationError(f"a budget cannot be negative: {limit_usd}")
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.calls = 0
        self.stopped = 0  # items that were not escalated because the budget was spent

    @property
    def exhausted(self) -> bool:
        """Whether the limit is reached (never, without a limit)."""
        return self.limit_usd is not None and self.spent_usd >= self.limit_usd

    @property
    def remaining_usd(self) -> float | None:
        """What is left (None without a limit)."""
        return None if self.limit_usd is None else max(0.0, self.limit_usd - self.spent_usd)

    def charge(self, cost_usd: float, calls: int = 1) -> None:
        """Record the cost of one call (or of `calls` calls made elsewhere, e.g. by an out-of-process worker)."""
        self.calls += max(0, calls)
        self.spent_usd += max(0.0, cost_usd)

    def __repr__(self) -> str:
        limit = "no limit" if self.limit_usd is None else f"limit ${self.limit_usd:.4f}"
        return f"Budget(spent ${self.spent_usd:.4f} of {limit}, {self.calls} calls)"
