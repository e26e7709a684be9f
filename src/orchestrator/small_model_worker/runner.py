"""Calling a generative back-end well: batches, a concurrency limit, the cache, one repair, the budget, a breaker.

:class:`ModelRunner` wraps one :class:`~orchestrator.small_model_worker.backends.base.JsonBackend`:

* **Batching** (label tasks): the items not in the cache go out ``batch_size`` per call. Label requests for
  the same task and labels that arrive within ``gather_s`` of each other (the elements of a ``for_each``
  step, one text each) are gathered and share those calls: the first waits ``gather_s`` for the others,
  asks for all, and hands each its answers (its step reports the shared calls' usage).
* **Concurrency**: at most ``concurrency`` calls in flight (an anyio ``CapacityLimiter``), batches of one
  request run in parallel in a task group.
* **Cache**: every answer is stored per item (see :mod:`~orchestrator.small_model_worker.cache`); a
  repeated item makes no call.
* **Validation and one repair**: an answer that is not JSON (or two objects, a refusal, cut at the output
  limit, an ambiguous label), or not of the schema, is sent back once with the error; a second bad answer
  fails the call (the caller falls back to keywords). The repair call is charged to the budget and stopped
  by it like the first.
* **Budget**: before a call to a back-end that is not local, a spent budget stops it
  (:class:`BudgetExhausted`); after every call its cost is charged.
* **Timeout and circuit breaker**: each call has a deadline on top of the back-end's own per-attempt
  timeout and bounded retries (a back-end's optional ``prepare()``, e.g. loading a local model, runs
  before it and is not counted); after ``failures`` calls in a row fail at the transport level (server down,
  timeouts, 5xx), the runner stops calling for ``cooldown_s`` and fails fast, so a dead server costs each
  later document nothing.

Inside a plan run it reports usage (tokens, cost) and counts: ``cache_hits:<name>``, ``repaired:<name>``,
``invalid:<name>``, ``failed:<name>``, ``budget_stopped:<name>``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio

from orchestrator.budget import Budget
from orchestrator.context import report_count, report_usage
from orchestrator.errors import ModelError, RunError
from orchestrator.providers.base import Message
from orchestrator.run_scope import current_budget
from orchestrator.small_model_worker.backends.base import Generated, JsonBackend
from orchestrator.small_model_worker.cache import ResultCache, cache_key
from orchestrator.small_model_worker.gather import Gatherer
from orchestrator.small_model_worker.tasks import (
    InvalidAnswer,
    ReceiptAnswer,
    check_against_schema,
    extract_messages,
    label_messages,
    parse_json_answer,
    read_labels,
    read_receipt,
    receipt_messages,
    summary_messages,
)

__all__ = ["BudgetExhausted", "CircuitBreaker", "CircuitOpen", "ModelRunner"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
Answer = tuple[str, float | None] | None  # (label, confidence: None when the model gave none that reads)

_REPAIR = "That answer is not valid: {error}. Answer again with JSON only, exactly matching SCHEMA."


class BudgetExhausted(RunError):
    """The run's model budget is spent: nothing more escalates to a paid model."""


class CircuitOpen(ModelError):
    """The breaker is open: the back-end failed several times in a row, so it is not called for a while."""


class CircuitBreaker:
    """Stops calling a back-end for a while after several transport failures in a row."""

    def __init__(self, failures: int = 3, cooldown_s: float = 30.0) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._in_a_row = 0
        self._open_until = 0.0

    def check(self, name: str) -> None:
        """Raise when the breaker is open."""
        wait = self._open_until - time.monotonic()
        if wait > 0:
            raise CircuitOpen(
                f"{name}: {self._in_a_row} calls in a row failed; not calling it for {wait:.0f}s more", retryable=True
            )

    def succeeded(self) -> None:
        self._in_a_row = 0

    def failed(self) -> None:
        self._in_a_row += 1
        if self._in_a_row >= self.failures:
            self._open_until = time.monotonic() + self.cooldown_s


class ModelRunner:
    """One generative back-end, called in batches, in parallel, through the cache and the budget.

    Args:
        backend: the back-end (closed by :meth:`aclose`).
        cache: the answer cache (None: no cache).
        batch_size: items per call for label tasks.
        concurrency: calls in flight at once.
        gather_s: how long a label request waits for others of the same task and labels to share its
            calls (0: never waits).
        deadline_s: the longest one call (with the back-end's own retries) may take.
        budget: a budget that wins over the run's (None: the run's, else `fallback_budget`).
        fallback_budget: the budget outside any run.
        breaker: the circuit breaker (default: 3 failures, 30 s).
    """

    def __init__(
        self,
        backend: JsonBackend,
        *,
        cache: ResultCache | None = None,
        batch_size: int = 16,
        concurrency: int = 4,
        gather_s: float = 0.01,
        deadline_s: float = 90.0,
        budget: Budget | None = None,
        fallback_budget: Budget | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.batch_size = max(1, batch_size)
        self.concurrency = max(1, concurrency)
        self.gather_s = max(0.0, gather_s)
        self.deadline_s = deadline_s
        self.budget = budget
        self.fallback_budget = fallback_budget or Budget()
        self.breaker = breaker or CircuitBreaker()
        self._limiter: anyio.CapacityLimiter | None = None
        self._gatherer: Gatherer[str, Answer] = Gatherer(self.gather_s)

    @property
    def name(self) -> str:
        """The mode recorded for this back-end's answers."""
        return self.backend.name

    def current_budget(self) -> Budget:
        """The budget in force: this runner's own, else the run's, else the one for use outside runs."""
        return self.budget or current_budget() or self.fallback_budget

    # -- tasks -----------------------------------------------------------------------------------------

    async def label(
        self,
        task: str,
        texts: Sequence[str],
        labels: Sequence[str],
        descriptions: Mapping[str, str],
        *,
        instruction: str = "",
    ) -> list[Answer]:
        """Per text, (label, confidence) or None where the model could not answer (failed call, spent budget)."""
        unique = list(dict.fromkeys(texts))
        spec: dict[str, Any] = {
            "labels": list(labels),
            "descriptions": {label: descriptions.get(label) for label in labels},
        }
        if instruction:
            spec["instruction"] = instruction

        def key(text: str) -> str:
            return cache_key(self.name, task, {"text": text, **spec})

        answers: dict[str, Answer] = {}
        keys = {text: key(text) for text in unique}
        cached = await self.cache.aget(list(keys.values())) if self.cache is not None else {}
        for text in unique:
            hit = cached.get(keys[text])
            if isinstance(hit, list) and len(hit) == 2 and hit[0] in labels:
                answers[text] = (str(hit[0]), float(hit[1]) if isinstance(hit[1], int | float) else None)
        if answers:
            report_count(f"cache_hits:{self.name}", len(answers))
        missing = [text for text in unique if text not in answers]

        async def ask(batch: list[str]) -> dict[str, Answer]:
            messages, schema = label_messages(batch, labels, descriptions, instruction=instruction)
            try:
                got = await self._call(
                    messages,
                    schema,
                    lambda data: read_labels(data, labels, len(batch)),
                    schema_name=f"{task}_answers",
                    max_tokens=96 + 64 * len(batch),  # a cap: ~15 tokens per answer, room for whitespace
                )
            except Exception as exc:  # one failed batch never fails the others: its items abstain
                self._count_failure(exc, len(batch))
                return {}
            if self.cache is not None:
                await self.cache.aput({key(t): list(a) for t, a in zip(batch, got, strict=True) if a is not None})
            return dict(zip(batch, got, strict=True))

        if missing:
            gathering = cache_key(self.name, task, spec)  # same model, task, labels and wording
            answers.update(await self._gatherer.run(gathering, missing, lambda ts: self._batched(ts, ask)))
        return [answers.get(text) for text in texts]

    async def _batched(
        self, texts: list[str], ask: Callable[[list[str]], Awaitable[dict[str, Answer]]]
    ) -> dict[str, Answer]:
        """`texts` asked `batch_size` per call, the calls in parallel (under the concurrency limit)."""
        answers: dict[str, Answer] = {}

        async def one(batch: list[str]) -> None:
            answers.update(await ask(batch))

        async with anyio.create_task_group() as group:
            for start in range(0, len(texts), self.batch_size):
                group.start_soon(one, texts[start : start + self.batch_size])
        return answers

    async def receipt(self, text: str) -> ReceiptAnswer:
        """The receipt parsed by the model (raises when the model cannot answer)."""
        messages, schema = receipt_messages(text)
        data = await self._single(
            "parse_items",
            {"text": text},
            messages,
            schema,
            lambda value: read_receipt(value).model_dump(),
            max_tokens=2048,
        )
        return ReceiptAnswer.model_validate(data)

    async def extract(self, text: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The fields of `schema` extracted from `text` (raises when the model cannot answer)."""

        def read(value: Any) -> dict[str, Any]:
            check_against_schema(value, schema)
            if not isinstance(value, dict):
                raise InvalidAnswer("expected a JSON object")
            return value

        data = await self._single(
            "extract", {"text": text, "schema": schema}, extract_messages(text, schema), schema, read, max_tokens=1024
        )
        return dict(data)

    async def summarize(self, text: str, sentences: int = 2) -> str:
        """A summary of `text` (raises when the model cannot answer)."""
        messages, schema = summary_messages(text, sentences)

        def read(value: Any) -> dict[str, str]:
            check_against_schema(value, schema)
            summary = str(value["summary"]).strip()
            if not summary:
                raise InvalidAnswer("the summary is empty")
            return {"summary": summary}

        data = await self._single(
            "summarize", {"text": text, "sentences": sentences}, messages, schema, read, max_tokens=400
        )
        return str(data["summary"])

    async def aclose(self) -> None:
        """Close the back-end."""
        await self.backend.aclose()

    # -- one call --------------------------------------------------------------------------------------

    async def _single(
        self,
        task: str,
        item: Any,
        messages: list[Message],
        schema: dict[str, Any],
        read: Callable[[Any], _T],
        *,
        max_tokens: int,
    ) -> Any:
        key = cache_key(self.name, task, item)
        if self.cache is not None:
            hit = (await self.cache.aget([key])).get(key)
            if hit is not None:
                try:
                    value = read(hit)
                except InvalidAnswer:
                    pass  # an old or damaged entry: ask again
                else:
                    report_count(f"cache_hits:{self.name}")
                    return value
        try:
            value = await self._call(messages, schema, read, schema_name=task, max_tokens=max_tokens)
        except Exception as exc:
            self._count_failure(exc, 1)
            raise
        if self.cache is not None:
            await self.cache.aput({key: value})
        return value

    async def _call(
        self,
        messages: list[Message],
        schema: dict[str, Any],
        read: Callable[[Any], _T],
        *,
        schema_name: str,
        max_tokens: int,
    ) -> _T:
        """One validated answer: a call, and one repair call when the answer does not validate."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        async with self._limiter:
            # Checked once a slot is free: calls queued behind the limit see what the calls before them spent.
            self.breaker.check(self.name)
            budget = self.current_budget()
            if not self.backend.local and budget.exhausted:
                raise BudgetExhausted(f"the budget of ${budget.limit_usd:.4f} is spent; not asking {self.name}")
            first = await self._generate(messages, schema, schema_name, max_tokens, budget)
            try:
                return read(parse_json_answer(first.text, truncated=first.truncated))
            except InvalidAnswer as exc:
                logger.info("%s: invalid answer (%s); asking once more", self.name, exc)
                report_count(f"repaired:{self.name}")
                repair = [*messages, Message.assistant(first.text[:4000]), Message.user(_REPAIR.format(error=exc))]
            if not self.backend.local and budget.exhausted:  # the first answer spent it: no repair call
                raise BudgetExhausted(f"the budget of ${budget.limit_usd:.4f} is spent; not asking {self.name} again")
            second = await self._generate(repair, schema, schema_name, max_tokens, budget)
            try:
                return read(parse_json_answer(second.text, truncated=second.truncated))
            except InvalidAnswer as exc:
                report_count(f"invalid:{self.name}")
                raise ModelError(f"{self.name} answered invalid JSON twice: {exc}", body=second.text[:2000]) from exc

    async def _generate(
        self, messages: list[Message], schema: dict[str, Any], schema_name: str, max_tokens: int, budget: Budget
    ) -> Generated:
        prepare = getattr(self.backend, "prepare", None)
        if prepare is not None:  # e.g. loading a local model: once, and not counted against a call's deadline
            await prepare()
        try:
            with anyio.fail_after(self.deadline_s):
                generated = await self.backend.generate_json(
                    messages, schema, schema_name=schema_name, max_tokens=max_tokens
                )
        except TimeoutError:
            self.breaker.failed()
            raise ModelError(f"{self.name} did not answer within {self.deadline_s:g}s", retryable=True) from None
        except ModelError as exc:
            if exc.retryable:
                self.breaker.failed()
            raise
        self.breaker.succeeded()
        usage = generated.usage
        cost = usage.cost_usd if math.isfinite(usage.cost_usd) else 0.0
        budget.charge(cost)
        report_usage(usage)
        return generated

    def _count_failure(self, exc: BaseException, n: int) -> None:
        if isinstance(exc, BudgetExhausted):
            self.current_budget().stopped += n
            report_count(f"budget_stopped:{self.name}", n)
            logger.info("%s", exc)
            return
        report_count(f"failed:{self.name}", n)
        # The failures that opened the breaker were logged as warnings; what it turns away is routine.
        level = logging.INFO if isinstance(exc, CircuitOpen) else logging.WARNING
        logger.log(level, "%s failed for %d item(s): %s: %s", self.name, n, type(exc).__name__, exc)

    def __repr__(self) -> str:
        return f"ModelRunner({self.name!r}, batch_size={self.batch_size}, concurrency={self.concurrency})"
