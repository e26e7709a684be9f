"""Parsing and categorizing are linear in the text's size, checked by counting work, not by timing.

The work of a call is the number of Python lines it executes (``sys.settrace`` line events): a
deterministic count, unaffected by a busy machine. Four times the input must cost about four times the
work; a quadratic step costs sixteen times. Each shape below is one a quadratic step once hid in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from orchestrator.rules.categories import categorize_with_keywords
from orchestrator.rules.models import LineItem
from orchestrator.rules.receipt.parse import parse_receipt_text

GROWTH_LIMIT = 5.5
"""Work at 4x the size over work at 1x: linear is ~4, quadratic ~16."""


def work(function: Callable[..., Any], *args: Any) -> int:
    """Python lines executed by ``function(*args)``."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        function(*args)
    finally:
        sys.settrace(None)
    return count


def growth(make: Callable[[int], Any], function: Callable[..., Any], n: int) -> float:
    return work(function, make(4 * n)) / work(function, make(n))


WORDS = "apple milk bread cheese soap towel juice rice beans coffee tea sugar".split()


def _word(i: int) -> str:
    return WORDS[(i * 7) % len(WORDS)]


SHAPES: dict[str, Callable[[int], str]] = {
    # many tendered/change pairs where change exceeds what was given: every change looked at every tender
    "cash and change lines": lambda n: "SHOP\n" + "\n".join(f"CASH {i % 9 + 1}.00\nCHANGE 20.00" for i in range(n)),
    # many totals and tenders: each total compared with every tendered amount
    "totals and tenders": lambda n: "SHOP\n" + "\n".join(f"TOTAL {i}.25\nVISA {i}.75" for i in range(n)),
    # one line holding many dates: each date compared with every earlier one
    "a line of dates": lambda n: "SHOP\n" + " ".join(f"{i % 28 + 1:02d}/01/2019" for i in range(n)),
    # one long line of amounts: the line copied once per amount
    "a line of amounts": lambda n: "SHOP\nTOTAL\n" + " ".join(f"{i % 90 + 1}.50" for i in range(n)),
    "item rows": lambda n: "SHOP\n" + "\n".join(f"{_word(i).title()} {_word(i + 1)} {i % 90 + 1}.25" for i in range(n)),
    "box-per-line items": lambda n: "SHOP\n" + "\n".join(f"{_word(i)}\n2\n{i % 90 + 1}.25" for i in range(n)),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_parsing_work_grows_linearly_with_the_text(shape: str) -> None:
    ratio = growth(SHAPES[shape], parse_receipt_text, 150)
    assert ratio < GROWTH_LIMIT, f"{shape}: 4x the text took {ratio:.1f}x the work"


def _one_long_name(n: int) -> list[LineItem]:
    return [LineItem(name=" ".join(_word(i) for i in range(n)), amount=1.0)]


def _one_squashed_name(n: int) -> list[LineItem]:
    return [LineItem(name="".join(_word(i) for i in range(n)), amount=1.0)]


def _many_items(n: int) -> list[LineItem]:
    return [LineItem(name=f"{_word(i)} {_word(i + 3)}", amount=1.0) for i in range(n)]


@pytest.mark.parametrize("make", [_one_long_name, _one_squashed_name, _many_items], ids=lambda f: f.__name__)
def test_categorizing_work_grows_linearly_with_the_items(make: Callable[[int], list[LineItem]]) -> None:
    categorize_with_keywords(make(2))  # the rules load and compile once, outside the count
    ratio = growth(make, categorize_with_keywords, 100)
    assert ratio < GROWTH_LIMIT, f"{make.__name__}: 4x the input took {ratio:.1f}x the work"
