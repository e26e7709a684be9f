"""What model calls cost: US dollars per million input and output tokens.

The table holds list prices (as last read from the providers' pages) for the hosted models the planner
uses; local models (``ollama/...``) cost nothing. Prices change, so every lookup takes overrides: a mapping,
or the path of a JSON file shaped ``{"gpt-4o": {"input": 2.5, "output": 10.0}, ...}``. An unknown model
costs 0 and is logged once as a warning; :func:`price_for` returns None for it, so a caller can tell
"free" from "unknown".

A dated or tagged id is priced by its longest known prefix: ``gpt-4o-2024-08-06`` as ``gpt-4o``,
``gpt-4o-mini-2024-07-18`` as ``gpt-4o-mini``, ``claude-sonnet-4-5-20250929`` as ``claude-sonnet-4-5``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from orchestrator.errors import ConfigurationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The cost of one call."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


FREE = Price(0.0, 0.0)

# The design's comparison: the same documents, each sent to the large model once (benchmarks, cost ledger).
BASELINE_PROMPT_TOKENS = 600
"""Instructions plus the output schema, per receipt."""
BASELINE_OUTPUT_TOKENS = 350
"""Line items with categories and totals as JSON, per receipt."""

PRICES: Mapping[str, Price] = {
    # OpenAI
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4-turbo": Price(10.00, 30.00),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-sonnet-4-6": Price(3.00, 15.00),
    "claude-sonnet-5": Price(2.00, 10.00),
    "claude-sonnet-5-5": Price(2.00, 10.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-opus-4": Price(15.00, 75.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-opus-4-5": Price(5.00, 25.00),
    "claude-opus-4-6": Price(5.00, 25.00),
    "claude-opus-4-7": Price(5.00, 25.00),
    "claude-opus-4-8": Price(5.00, 25.00),
    "claude-opus-5": Price(5.00, 25.00),
    "claude-opus-5-5": Price(4.00, 20.00),
}

LOCAL_PREFIXES = ("ollama/", "local/")
"""Models behind these prefixes run on our own hardware and cost nothing per token."""

PriceLike: TypeAlias = Price | tuple[float, float] | Mapping[str, float]
PriceOverrides: TypeAlias = Mapping[str, PriceLike] | str | os.PathLike[str]

_warned: set[str] = set()


def load_prices(path: str | os.PathLike[str]) -> dict[str, Price]:
    """Read a JSON price file: ``{"model": {"input": 2.5, "output": 10.0}}`` (dollars per million tokens)."""
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"price file {file}: cannot read it ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"price file {file}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"price file {file}: expected an object of model -> {{input, output}}")
    return {str(model): _as_price(value, where=f"price file {file}, model {model!r}") for model, value in raw.items()}


def resolve_prices(overrides: PriceOverrides | None = None) -> dict[str, Price]:
    """The default table with `overrides` (a mapping or a JSON file path) laid over it."""
    table = dict(PRICES)
    if overrides is None:
        return table
    if isinstance(overrides, str | os.PathLike):
        table.update(load_prices(overrides))
    else:
        table.update({model: _as_price(value, where=f"price for {model!r}") for model, value in overrides.items()})
    return table


def price_for(model: str, overrides: PriceOverrides | None = None) -> Price | None:
    """The price of `model`, or None when it is not in the table."""
    table = resolve_prices(overrides) if overrides is not None else PRICES
    return find_price(model, table)


def cost_usd(model: str, input_tokens: int, output_tokens: int, overrides: PriceOverrides | None = None) -> float:
    """What a call cost in US dollars; 0 (with a one-time warning in the log) for an unknown model."""
    table = resolve_prices(overrides) if overrides is not None else PRICES
    return cost_from_table(model, input_tokens, output_tokens, table)


def cost_from_table(model: str, input_tokens: int, output_tokens: int, table: Mapping[str, Price]) -> float:
    """:func:`cost_usd` against an already resolved table (what the adapters use on every call)."""
    price = find_price(model, table)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            logger.warning("no price known for model %r: its cost is counted as 0 (pass prices= to set one)", model)
        return 0.0
    return price.cost(input_tokens, output_tokens)


def find_price(model: str, table: Mapping[str, Price]) -> Price | None:
    """The price of `model` in `table`: exact id, local prefix, then longest known prefix."""
    if model in table:
        return table[model]
    if model.startswith(LOCAL_PREFIXES):
        return FREE
    best: str | None = None
    for known in table:
        if model.startswith(known) and model[len(known)] in "-:@" and (best is None or len(known) > len(best)):
            best = known
    if best is not None:
        return table[best]
    if "/" in model:  # routers such as "openai/gpt-4o"
        return find_price(model.rsplit("/", 1)[1], table)
    return None


def _as_price(value: Any, *, where: str) -> Price:
    if isinstance(value, Price):
        return value
    try:
        if isinstance(value, Mapping):
            return Price(float(value["input"]), float(value["output"]))
        if isinstance(value, tuple | list) and len(value) == 2:
            return Price(float(value[0]), float(value[1]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: expected {{'input': dollars, 'output': dollars}} per 1M tokens") from exc
    raise ConfigurationError(f"{where}: expected {{'input': dollars, 'output': dollars}} per 1M tokens, got {value!r}")
