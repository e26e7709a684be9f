"""Ordinary code works the same under full isolation and under the process-level fallback."""

from __future__ import annotations

import base64

import pytest

from .conftest import Runner


@pytest.fixture(params=["bwrap", "process"])
def runner(request: pytest.FixtureRequest) -> Runner:
    runner: Runner = request.getfixturevalue("sandboxed" if request.param == "bwrap" else "fallback")
    return runner


def test_arithmetic_and_inputs(runner: Runner) -> None:
    reply = runner(
        "result = round(sum(x['amount'] for x in items) * (1 + rate), 2)",
        {"items": [{"amount": 10.0}, {"amount": 2.5}], "rate": 0.08},
    )
    assert reply.ok and reply.result == 13.5


def test_main_return_value_is_the_result(runner: Runner) -> None:
    reply = runner("def main():\n    return {'n': len(names), 'first': sorted(names)[0]}", {"names": ["b", "a"]})
    assert reply.ok and reply.result == {"n": 2, "first": "a"}


def test_json_math_statistics_datetime_re(runner: Runner) -> None:
    reply = runner(
        """
import datetime, json, math, re, statistics
values = json.loads(raw)
result = {
    'mean': statistics.mean(values),
    'median': statistics.median(values),
    'sqrt': math.sqrt(16),
    'weekday': datetime.date.fromisoformat('2024-03-15').strftime('%A'),
    'days': (datetime.date(2024, 3, 1) - datetime.date(2024, 2, 1)).days,
    'codes': re.findall(r'[A-Z]{3}-\\d+', 'INV-12, PO-7, ABC-99'),
}
""",
        {"raw": "[1, 2, 3, 10]"},
    )
    assert reply.ok, reply.error
    assert reply.result == {
        "mean": 4,
        "median": 2.5,
        "sqrt": 4.0,
        "weekday": "Friday",
        "days": 29,
        "codes": ["INV-12", "ABC-99"],
    }


def test_print_is_captured(runner: Runner) -> None:
    reply = runner("import sys\nprint('hello')\nprint('warn', file=sys.stderr)\nresult = None")
    assert reply.ok and reply.result is None
    assert reply.stdout == "hello\n" and reply.stderr == "warn\n"


def test_a_passed_in_file_can_be_read_but_not_changed(runner: Runner) -> None:
    files = {"rates.csv": base64.b64encode(b"category,rate\nfood,0.07\nalcohol,0.2\n").decode()}
    reply = runner(
        """
import csv, os
with open('files/rates.csv') as f:
    rates = {row['category']: float(row['rate']) for row in csv.DictReader(f)}
try:
    open('files/rates.csv', 'a').write('x')
    changed = True
except PermissionError:
    changed = False
result = {'rates': rates, 'changed': changed}
""",
        files=files,
    )
    assert reply.ok, reply.error
    assert reply.result == {"rates": {"food": 0.07, "alcohol": 0.2}, "changed": False}


def test_each_call_gets_a_fresh_empty_work_folder(runner: Runner) -> None:
    first = runner("import os\nopen('left.txt', 'w').write('x')\nresult = sorted(os.listdir('.'))")
    second = runner("import os\nresult = sorted(os.listdir('.'))")
    assert first.ok and "left.txt" in first.result
    assert second.ok and "left.txt" not in second.result
