"""Small-model throughput: items categorized per second by keywords, the embedded model and an LLM back-end.

The LLM back-end is Ollama's API served by :class:`~orchestrator.testing.fake_llm.FakeLLMServer` on
127.0.0.1, answering like a model (:class:`~orchestrator.testing.fake_small_model.SmallModelResponder`)
with a realistic latency: a per-call delay drawn from `latency_s` plus generation at `tokens_per_s`, so a
bigger batch takes longer to write, as on a real server. It is measured four ways, through
:class:`~orchestrator.small_model_worker.SmallModelWorker` with only the ``llm`` tier:

* unbatched: one item per call, one call at a time (on the first `unbatched_items` items: it is slow);
* batched: `batch_size` items per call, one call at a time;
* batched + concurrent: `batch_size` items per call, `concurrency` calls in flight;
* cached: the same items again: every answer comes from the SQLite cache, no call is made;
* for_each: one request per item, all at once (as a ``for_each`` step makes them), without and with
  gathering them into shared calls (``SMALL_MODEL_GATHER_MS``).

Keywords and the embedded model run in-process on the same names (the embedded model's one-time load is
reported apart, and it is measured with and without its embedding cache, and as a ``for_each`` step calls
it: one request per name, without and with gathering them into one batch).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from orchestrator.errors import ConfigurationError, RunError
from orchestrator.settings import Settings

__all__ = ["BACKENDS", "item_names", "measure_models"]

BACKENDS: tuple[str, ...] = ("keywords", "embedded", "llm")

_PRODUCTS = (
    "whole milk", "sourdough bread", "free range eggs", "greek yogurt", "cheddar cheese", "bananas", "gala apples",
    "baby spinach", "ground coffee", "green tea", "orange juice", "sparkling water", "craft beer", "pinot noir",
    "paper towels", "dish soap", "laundry detergent", "trash bags", "ballpoint pens", "printer paper", "stapler",
    "usb-c cable", "wireless mouse", "aa batteries", "cotton t-shirt", "wool socks", "ibuprofen", "toothpaste",
    "bus ticket", "taxi ride", "unleaded fuel", "diesel", "hotel night", "movie ticket", "haircut", "cheeseburger",
    "caesar salad", "chicken burrito", "blueberry muffin", "croissant", "latte", "espresso", "dog food", "cat litter",
)  # fmt: skip
_QUALIFIERS = (
    "organic", "large", "family size", "2 pack", "low fat", "premium", "store brand", "classic", "fresh", "mini",
)  # fmt: skip


def item_names(n: int) -> list[str]:
    """`n` distinct, realistic item names (qualifier + product), deterministic."""
    names = [f"{q} {p}" for q in _QUALIFIERS for p in _PRODUCTS]
    if n > len(names):
        names += [f"{name} #{i}" for i in range(n // len(names) + 1) for name in names]
    return names[:n]


async def _timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


def _row(backend: str, mode: str, n: int, seconds: float, calls: int | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "backend": backend,
        "mode": mode,
        "items": n,
        "seconds": round(seconds, 3),
        "items_per_s": round(n / seconds, 1) if seconds > 0 else None,
        "calls": calls,
        **extra,
    }


async def _keywords(names: list[str]) -> dict[str, Any]:
    from orchestrator.rules.categories import DEFAULT_TAXONOMY, KeywordTier

    tier = KeywordTier()
    seconds = await _timed(lambda: tier.classify(names, DEFAULT_TAXONOMY))
    return _row("keywords", "in-process", len(names), seconds, 0)


async def _embedded(names: list[str], home: Path, gather_ms: float) -> list[dict[str, Any]]:
    from orchestrator.errors import ConfigurationError
    from orchestrator.rules.categories import DEFAULT_TAXONOMY, load_rules
    from orchestrator.small_model_worker.backends.embedded import EmbeddedClassifier

    rules = load_rules()
    try:
        classifier = EmbeddedClassifier(examples=rules.examples(), descriptions=rules.descriptions(), cache_dir=home)
    except ConfigurationError as exc:
        return [{"backend": "embedded", "mode": "unavailable", "error": str(exc)}]
    warmup = await _timed(lambda: classifier.classify(["warm up"], DEFAULT_TAXONOMY))  # load + fit, once
    fresh = await _timed(lambda: classifier.classify(names, DEFAULT_TAXONOMY))
    cached = await _timed(lambda: classifier.classify(names, DEFAULT_TAXONOMY))
    rows = [
        _row("embedded", "uncached (batched on CPU)", len(names), fresh, 0, load_s=round(warmup, 2)),
        _row("embedded", "embeddings cached", len(names), cached, 0),
    ]
    for run, (mode, gather_s) in enumerate(
        (("for_each: a request per item", 0.0), (f"for_each: gathered ({gather_ms:g} ms)", gather_ms / 1000))
    ):
        alone = EmbeddedClassifier(
            examples=rules.examples(), descriptions=rules.descriptions(), cache_dir=home, gather_s=gather_s
        )  # the examples' embeddings come from the cache; the for_each names are new
        await alone.classify(["warm up"], DEFAULT_TAXONOMY)  # fit (the model is loaded already)
        fresh_names = [f"{name} (for_each {run})" for name in names]  # in no cache, and new to each run

        async def each_alone(classifier: EmbeddedClassifier = alone, batch: list[str] = fresh_names) -> None:
            async with anyio.create_task_group() as group:
                for name in batch:
                    group.start_soon(classifier.classify, [name], DEFAULT_TAXONOMY)

        rows.append(_row("embedded", f"{mode}, uncached", len(names), await _timed(each_alone), 0))
    return rows


async def _llm(
    names: list[str],
    home: Path,
    *,
    latency_s: tuple[float, float],
    tokens_per_s: float,
    batch_size: int,
    concurrency: int,
    unbatched_items: int,
    gather_ms: float,
) -> list[dict[str, Any]]:
    from orchestrator.small_model_worker import SmallModelWorker
    from orchestrator.testing.fake_llm import FakeLLMServer
    from orchestrator.testing.fake_small_model import SmallModelResponder

    rows: list[dict[str, Any]] = []
    responder = SmallModelResponder(latency_s=latency_s, seed=0)
    with FakeLLMServer(default=responder, tokens_per_s=tokens_per_s) as server:
        settings = Settings(orchestrator_home=home, ollama_api_url=server.base_url)

        async def run(
            mode: str,
            items: list[str],
            batch: int,
            parallel: int,
            cache: bool,
            fresh: bool,
            *,
            one_per_request: bool = False,
            gather_ms: float = 0.0,
        ) -> None:
            worker = SmallModelWorker(
                "ollama",
                "phi3",
                settings=settings.model_copy(update={"small_model_gather_ms": gather_ms}),
                cascade=("llm",),
                batch_size=batch,
                concurrency=parallel,
                cache=cache,
            )

            async def each_alone() -> None:  # as a for_each step calls it: one request per item, all at once
                async with anyio.create_task_group() as group:
                    for item in items:
                        group.start_soon(worker.categorize_items, [item])

            before = responder.calls
            async with worker:
                seconds = await _timed(each_alone if one_per_request else lambda: worker.categorize_items(items))
            rows.append(_row("llm (ollama api, fake server)", mode, len(items), seconds, responder.calls - before))
            if fresh and rows[-1]["calls"] == 0:
                raise RunError(f"{mode}: answered from a cache; the measurement is void")

        await run("unbatched, sequential", names[:unbatched_items], 1, 1, False, True)
        await run(f"batched ({batch_size}/call), sequential", names, batch_size, 1, False, True)
        await run(f"batched ({batch_size}/call), {concurrency} concurrent", names, batch_size, concurrency, True, True)
        await run("cached (repeat of the above)", names, batch_size, concurrency, True, False)
        alone = f"for_each: a request per item, {concurrency} concurrent"
        await run(alone, names, batch_size, concurrency, False, True, one_per_request=True)
        gathered = f"for_each: a request per item, gathered ({gather_ms:g} ms) into {batch_size}/call"
        await run(gathered, names, batch_size, concurrency, False, True, one_per_request=True, gather_ms=gather_ms)
    return rows


async def measure_models(
    *,
    n_items: int = 48,
    latency_s: tuple[float, float] = (0.2, 0.4),
    tokens_per_s: float = 150.0,
    batch_size: int = 16,
    concurrency: int = 4,
    unbatched_items: int = 16,
    gather_ms: float = 10.0,
    backends: Sequence[str] = BACKENDS,
) -> dict[str, Any]:
    """Items per second per back-end and mode (see the module docstring); caches live in a temporary folder.

    Raises:
        ConfigurationError: an unknown name in `backends`.
    """
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise ConfigurationError(f"unknown benchmark back-end {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    names = item_names(n_items)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-models-") as tmp:
        home = Path(tmp)
        if "keywords" in backends:
            rows.append(await _keywords(names))
        if "embedded" in backends:
            rows += await _embedded(names, home / "embeddings", gather_ms)
        if "llm" in backends:
            rows += await _llm(
                names,
                home,
                latency_s=latency_s,
                tokens_per_s=tokens_per_s,
                batch_size=batch_size,
                concurrency=concurrency,
                unbatched_items=min(unbatched_items, n_items),
                gather_ms=gather_ms,
            )
    return {
        "items": n_items,
        "fake_server": {"latency_s": list(latency_s), "tokens_per_s": tokens_per_s},
        "rows": rows,
    }
