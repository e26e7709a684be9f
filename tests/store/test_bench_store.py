"""`orchestrator bench store`: the overhead rows, as JSON, with the ratio against the same plans without the store."""

from __future__ import annotations

import json

import pytest

from ._cli import cli


def test_bench_store_reports_the_overhead_per_step_of_each_plan() -> None:
    proc = cli("bench", "store", "--receipts", "5", "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["plan"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {"chain 300 no-op", "fan-out 1-300-1 no-op", "receipt pipeline x 5"}
    assert rows["chain 300 no-op"]["steps"] == 300 and rows["receipt pipeline x 5"]["steps"] == 25
    for row in rows.values():
        assert row["store_s"] > 0 and row["no_store_s"] > 0
        assert row["ratio"] == pytest.approx(row["store_s"] / row["no_store_s"], rel=0.05)
