"""`SmallModelWorker`: the design's small worker model, with keyword matching as the fallback that always works.

    worker = SmallModelWorker(backend="ollama", model_name="phi3")
    items = await worker.parse_line_items(ocr_text)
    categorized = await worker.categorize_items(items)

Per item, the cheapest tier that is sure answers (the cascade, :mod:`~orchestrator.small_model_worker.cascade`):
keyword rules, then the embedded MiniLM classifier, then the configured small model (``llm``), then,
optionally, the large model (``large``). ``SMALL_MODEL_CASCADE`` (or ``cascade=``) picks and orders the
tiers, ``SMALL_MODEL_THRESHOLD(S)`` the confidence at which each answers. Every result says which mode
answered it. Whatever goes wrong with a model (server down, slow, garbage, wrong schema, budget spent),
the answer falls back to the keyword rules: a small model never breaks the workflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.budget import Budget
from orchestrator.context import report_count, report_mode
from orchestrator.errors import ConfigurationError, RunError
from orchestrator.rules import text as keyword_text
from orchestrator.rules.categories import KeywordRules, KeywordTier, categorized, load_rules, taxonomy_labels
from orchestrator.rules.models import CategorizedItems, ParsedReceipt
from orchestrator.rules.receipt.parse import parse_receipt_text, receipt_from_answer
from orchestrator.settings import Settings, current_settings
from orchestrator.small_model_worker._inputs import ItemsLike, as_line_items, schema_of
from orchestrator.small_model_worker.backends import make_backend
from orchestrator.small_model_worker.backends.base import JsonBackend
from orchestrator.small_model_worker.cache import ResultCache
from orchestrator.small_model_worker.cascade import Cascade, Prediction, Tier
from orchestrator.small_model_worker.choose import SmallModelChoice, choose_backend
from orchestrator.small_model_worker.results import Classification, Extraction, SentimentResult, Summary
from orchestrator.small_model_worker.runner import ModelRunner
from orchestrator.small_model_worker.tiers import FunctionTier, ModelTier

__all__ = ["SENTIMENT_LABELS", "SmallModelWorker"]

logger = logging.getLogger(__name__)


def _fell_back(model: str, what: str, exc: Exception) -> None:
    """Count a keyword fallback and log it: a warning, unless the runner already warned about its own failure
    (a model error) or turned the call away (an open breaker, a spent budget), so one failure is one warning."""
    level = logging.INFO if isinstance(exc, RunError) else logging.WARNING
    logger.log(level, "%s could not %s (%s: %s); keywords answer", model, what, type(exc).__name__, exc)
    report_count("fallback:keyword")


SENTIMENT_LABELS: dict[str, str] = {
    "positive": "praise or satisfaction: good, great, love, fast, helpful, recommend",
    "negative": "a complaint or disappointment: bad, broken, slow, rude, refund, never again",
    "neutral": "a plain statement or question with no clear opinion",
}


class SmallModelWorker:
    """Small-model tasks with a confidence cascade and a keyword fallback.

    Args:
        backend: ``ollama``, ``openai_compatible``, ``azure``, ``transformers`` or ``embedded``; default from
            ``SMALL_MODEL_BACKEND``, else a configured server, else ``embedded`` (see ``choose``).
        model_name: the model (``WORKER_MODEL``, default ``phi3``; transformers: a folder or hub id).
        settings: default :func:`~orchestrator.settings.current_settings`.
        base_url: the server (Ollama root, or an OpenAI-compatible ``.../v1``); default from settings.
        api_key: key for OpenAI-compatible or Azure servers; default from settings.
        endpoint: Azure AI model inference endpoint; default ``AZURE_AI_ENDPOINT``.
        device: torch device for transformers.
        generator: any :class:`~orchestrator.small_model_worker.backends.base.JsonBackend` to use as the
            ``llm`` tier instead of building one (tests, new servers).
        cascade: tiers in order, from ``keyword``, ``embedded``, ``llm``, ``large``.
        threshold: confidence at which a tier answers; `thresholds` per tier (and ``parse``).
        batch_size: items per model call. concurrency: calls in flight. timeout_s: per call.
        cache: keep answers in SQLite under ``ORCHESTRATOR_HOME/cache``.
        budget_usd: a budget for this worker alone; default: the run's (``BUDGET_USD``).

    Raises:
        ConfigurationError: an unknown back-end or tier, or a back-end missing its URL, key or extra.
    """

    def __init__(
        self,
        backend: str | None = None,
        model_name: str | None = None,
        *,
        settings: Settings | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        endpoint: str | None = None,
        device: str | None = None,
        generator: JsonBackend | None = None,
        cascade: Sequence[str] | None = None,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        batch_size: int | None = None,
        concurrency: int | None = None,
        timeout_s: float | None = None,
        cache: bool | None = None,
        budget_usd: float | None = None,
    ) -> None:
        self.settings = settings if settings is not None else current_settings()
        s = self.settings
        overrides: dict[str, Any] = {"small_model_cascade": tuple(cascade)} if cascade is not None else {}
        if threshold is not None or thresholds is not None:
            overrides |= {"small_model_threshold": s.small_model_threshold if threshold is None else threshold}
            overrides |= {"small_model_thresholds": dict(thresholds or {})}
        if overrides:  # validated like the environment's values
            try:
                s = Settings.model_validate(s.model_dump() | overrides)
            except ValidationError as exc:
                error = exc.errors()[0]
                raise ConfigurationError(f"SmallModelWorker {error['loc'][0]}: {error['msg']}") from None
        self.cascade: tuple[str, ...] = s.small_model_cascade
        self.threshold = s.small_model_threshold
        self.thresholds = dict(s.small_model_thresholds)
        self.timeout_s = timeout_s or s.small_model_timeout_s
        if generator is not None:
            self.choice = SmallModelChoice(backend or "custom", model_name or generator.name, "generator given")
        else:
            self.choice = choose_backend(s, backend, model_name)
        self._cache = (
            ResultCache(s.orchestrator_home / "cache") if (s.small_model_cache if cache is None else cache) else None
        )
        self._budget = Budget(budget_usd) if budget_usd is not None else None
        self._fallback_budget = Budget(s.budget_usd)
        self._batch_size = batch_size or s.small_model_batch_size
        self._concurrency = concurrency or s.small_model_concurrency
        if generator is None and self.choice.generative:
            generator = make_backend(
                self.choice.backend,
                self.choice.model,
                s,
                timeout_s=self.timeout_s,
                base_url=base_url,
                api_key=api_key,
                endpoint=endpoint,
                device=device,
            )
        self.runner = self._runner(generator) if generator is not None else None
        self._large: ModelRunner | None = None
        self._large_checked = False

    # -- set-up ------------------------------------------------------------------------------------------

    def _runner(self, backend: JsonBackend) -> ModelRunner:
        retries = self.settings.small_model_max_retries
        return ModelRunner(
            backend,
            cache=self._cache,
            batch_size=self._batch_size,
            concurrency=self._concurrency,
            gather_s=self.settings.small_model_gather_ms / 1000,
            deadline_s=self.timeout_s * (retries + 1) + 5.0,
            budget=self._budget,
            fallback_budget=self._fallback_budget,
        )

    @property
    def mode(self) -> str:
        """The mode of the configured model: ``embedded``, or ``<backend>:<model>``."""
        return self.runner.name if self.runner is not None else self.choice.backend

    def describe(self) -> str:
        """One line for people: which back-end and why."""
        return self.choice.describe()

    def large_runner(self) -> ModelRunner | None:
        """The large model as the last tier, when ``large`` is in the cascade and a planner provider is set."""
        if not self._large_checked:
            self._large_checked = True
            if "large" in self.cascade:
                from orchestrator.providers.configured import configured_provider
                from orchestrator.providers.factory import make_chat_model
                from orchestrator.small_model_worker.backends.chat import ChatBackend

                provider = configured_provider(self.settings)
                if provider is None:
                    logger.info("no large model configured: the cascade stops at the small tiers")
                    return None
                try:
                    model = make_chat_model(provider, settings=self.settings, timeout_s=60.0, max_retries=1)
                except ConfigurationError as exc:
                    logger.warning("the large-model tier is unavailable (%s); the small tiers answer", exc)
                    return None
                self._large = self._runner(ChatBackend(model, local=False, timeout_s=60.0))
        return self._large

    def tiers(
        self,
        *,
        keyword: Tier | None,
        embedded: Callable[[], Tier] | None,
        task: str,
        descriptions: Mapping[str, str] | None = None,
        instruction: str = "",
    ) -> list[Tier]:
        """The cascade's tiers for one task, in the configured order (missing ones are left out).

        The keyword tier is always there: when the configured cascade leaves it out, it comes last, to answer
        the items no model could (a failed call, a spent budget).
        """
        tiers: list[Tier] = []
        for kind in self.cascade:
            if kind == "keyword" and keyword is not None:
                tiers.append(keyword)
            elif kind == "embedded" and embedded is not None:
                try:
                    tiers.append(embedded())
                except ConfigurationError as exc:  # the extra is not installed: the other tiers still work
                    logger.info("embedded tier unavailable: %s", exc)
            elif kind == "llm" and self.runner is not None:
                tiers.append(ModelTier(self.runner, task=task, descriptions=descriptions, instruction=instruction))
            elif kind == "large" and (large := self.large_runner()) is not None:
                tiers.append(ModelTier(large, task=task, descriptions=descriptions, instruction=instruction))
        if keyword is not None and keyword not in tiers:
            tiers.append(keyword)
        return tiers

    def make_cascade(self, tiers: Sequence[Tier]) -> Cascade:
        """A cascade over `tiers` with the configured thresholds (``llm``/``large`` name the model tiers)."""
        kinds = {"llm": self.runner.name if self.runner else None, "large": self._large.name if self._large else None}
        names = {tier.name for tier in tiers}
        per_tier = {kinds.get(kind) or kind: value for kind, value in self.thresholds.items()}
        return Cascade(tiers, threshold=self.threshold, thresholds={k: v for k, v in per_tier.items() if k in names})

    async def _answer(
        self, tiers: list[Tier], texts: Sequence[str], labels: Sequence[str], keyword: Tier
    ) -> list[Prediction]:
        """Run the cascade; on any failure the keyword tier answers everything (graceful fallback)."""
        try:
            return list(await self.make_cascade(tiers).classify(texts, labels))
        except Exception as exc:
            logger.warning("small-model cascade failed (%s: %s); keywords answer", type(exc).__name__, exc)
            report_count("fallback:keyword", len(texts))
            predictions = [p for p in await keyword.classify(texts, labels) if p is not None]
            report_mode(keyword.name)
            report_count(f"tier:{keyword.name}", len(predictions))
            return predictions

    def _embedded(
        self, descriptions: Mapping[str, str], examples: Mapping[str, Sequence[str]] | None = None
    ) -> Callable[[], Tier]:
        def make() -> Tier:
            from orchestrator.small_model_worker.backends.embedded import shared_classifier

            return shared_classifier(
                examples=examples,
                descriptions=descriptions,
                cache_dir=self.settings.orchestrator_home / "cache",
                gather_s=self.settings.small_model_gather_ms / 1000,
            )

        return make

    # -- tasks -------------------------------------------------------------------------------------------

    async def classify(
        self, texts: Sequence[str], labels: Sequence[str], *, descriptions: Mapping[str, str] | None = None
    ) -> list[Classification]:
        """The best of `labels` for each text, with a confidence and the mode that answered.

        Raises:
            ConfigurationError: `labels` is empty.
        """
        labels = list(dict.fromkeys(label for label in labels if label.strip()))
        if not labels:
            raise ConfigurationError("classify needs at least one label")
        if not texts:
            return []
        keyword = FunctionTier("keyword", keyword_text.keyword_label)
        meaning = {label: (descriptions or {}).get(label, label) for label in labels}
        tiers = self.tiers(keyword=keyword, embedded=self._embedded(meaning), task="classify", descriptions=meaning)
        predictions = await self._answer(tiers, texts, labels, keyword)
        return [
            Classification(text=t, label=p.label, confidence=p.confidence, mode=p.tier or "keyword")
            for t, p in zip(texts, predictions, strict=True)
        ]

    async def sentiment(self, texts: Sequence[str]) -> list[SentimentResult]:
        """Positive, negative or neutral for each text, with a confidence and the mode that answered.

        The tiers are the keyword lexicon and the small model; the embedded tier is left out, because MiniLM
        embeddings carry a text's topic rather than its polarity (zero-shot, it got about half of the
        example feedback wrong and overturned correct keyword answers).
        """
        if not texts:
            return []
        labels = list(SENTIMENT_LABELS)
        keyword = FunctionTier("keyword", keyword_text.keyword_sentiment)
        tiers = self.tiers(keyword=keyword, embedded=None, task="sentiment", descriptions=SENTIMENT_LABELS)
        predictions = await self._answer(tiers, texts, labels, keyword)
        return [
            SentimentResult(text=t, label=p.label, confidence=p.confidence, mode=p.tier or "keyword")
            for t, p in zip(texts, predictions, strict=True)
        ]

    async def categorize_items(
        self,
        items: ParsedReceipt | ItemsLike,
        taxonomy: Sequence[str] | None = None,
        rules: KeywordRules | None = None,
    ) -> CategorizedItems:
        """An expense category for each line item (names alone are items of amount 0), with totals per category.

        Args:
            items: line items, a parsed receipt (its items), dicts, or names.
            taxonomy: allowed categories (default: the expense taxonomy).
            rules: keyword rules (default: the shipped ones).
        """
        lines = as_line_items(items)
        labels = taxonomy_labels(taxonomy)
        rules = rules if rules is not None else load_rules()
        keyword = KeywordTier(rules)
        try:
            tiers = self.category_tiers(rules, keyword=keyword)
        except Exception as exc:
            logger.warning("small-model tiers unavailable (%s: %s); keywords answer", type(exc).__name__, exc)
            tiers = [keyword]
        predictions = await self._answer(tiers, [line.name for line in lines], labels, keyword)
        return categorized(lines, predictions, "cascade")

    def category_tiers(self, rules: KeywordRules, *, keyword: Tier | None = None) -> list[Tier]:
        """The categorizer's tiers, in ``SMALL_MODEL_CASCADE`` order.

        ``keyword`` is the rules (:class:`~orchestrator.rules.categories.KeywordTier`); ``embedded`` the MiniLM
        classifier, learning from the rules' examples and descriptions (left out when its extra is not
        installed); ``llm`` the small model and ``large`` the large model, both told what each category means.
        """
        return self.tiers(
            keyword=keyword if keyword is not None else KeywordTier(rules),
            embedded=self._embedded(rules.descriptions(), rules.examples()),
            task="categorize",
            descriptions=rules.descriptions(),
            instruction="The items are lines of a receipt; the labels are expense categories.",
        )

    async def parse_line_items(self, text: str) -> ParsedReceipt:
        """Parse receipt text: keywords first, then up the cascade while the parse stays unsure.

        The keyword parse is always made (it is free). With ``parse`` in the thresholds, a keyword parse
        whose total confidence (``field_confidence["total"]``, calibrated) reaches it answers alone; below
        it, the receipt goes to the configured small model (``llm`` in the cascade), then, if still below,
        to the large model (``large`` in the cascade, when the budget allows). Without a ``parse``
        threshold the small model parses every receipt, as before. A model's parse is checked like the
        keywords' and wins only when its numbers agree at least as well. ``escalated`` lists the tiers
        asked; ``mode`` says which one answered.
        """
        keyword = parse_receipt_text(text)
        threshold = self.thresholds.get("parse")
        if threshold is not None and receipt_score(keyword) >= threshold:
            return _reported(keyword)
        return await self.escalate_receipt(text, keyword)

    async def escalate_receipt(self, text: str, keyword: ParsedReceipt | None = None) -> ParsedReceipt:
        """Send a receipt up the model tiers (small, then large) until one's parse reaches the ``parse``
        threshold; the best-agreeing parse answers (the keyword one when no model does better)."""
        keyword = keyword if keyword is not None else parse_receipt_text(text)
        threshold = self.thresholds.get("parse")
        best = keyword
        asked: list[str] = []
        for runner in self._parse_runners():
            asked.append(runner.name)
            try:
                parsed = receipt_from_answer(await runner.receipt(text), mode=runner.name)
            except Exception as exc:
                _fell_back(runner.name, "parse the receipt", exc)
                continue
            if keyword.items and parsed.confidence < keyword.confidence:
                report_count(f"kept_keyword:{runner.name}")  # the model's numbers agree less well
            else:
                best = parsed
            if threshold is None or parsed.confidence >= threshold:
                break
        return _reported(best.model_copy(update={"escalated": asked}))

    def _parse_runners(self) -> list[ModelRunner]:
        """The model tiers a receipt may go up to, cheapest first: the small model, then the large one."""
        runners: list[ModelRunner] = []
        if self.runner is not None and "llm" in self.cascade:
            runners.append(self.runner)
        if "large" in self.cascade and (large := self.large_runner()) is not None:
            runners.append(large)
        return runners

    async def extract_entities(
        self, text: str, schema: type[BaseModel] | Mapping[str, Any] | Sequence[str]
    ) -> Extraction:
        """Fields from `text`: `schema` is a Pydantic model, a JSON Schema, or a list of field names.

        Keyword fallback: the aspects, amounts and e-mail addresses the rules find (``entities``).
        """
        json_schema, validate = schema_of(schema)
        if self.runner is not None and "llm" in self.cascade:
            try:
                data = await self.runner.extract(text, json_schema)
                if validate is not None:
                    data = validate(data)
                report_mode(self.runner.name)
                return Extraction(data=data, confidence=0.8, mode=self.runner.name)
            except Exception as exc:
                _fell_back(self.runner.name, "extract", exc)
        found = keyword_text.extract(text)
        report_mode("keyword")
        return Extraction(entities=found.entities, confidence=found.confidence, mode="keyword")

    async def summarize(self, text: str, sentences: int = 2) -> Summary:
        """A short summary: the model's, else the first sentences."""
        if self.runner is not None and "llm" in self.cascade:
            try:
                summary = await self.runner.summarize(text, sentences)
                report_mode(self.runner.name)
                return Summary(summary=summary, confidence=0.8, mode=self.runner.name)
            except Exception as exc:
                _fell_back(self.runner.name, "summarize", exc)
        report_mode("keyword")
        return Summary(summary=keyword_text.summarize(text, sentences).summary or "", confidence=0.5, mode="keyword")

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the model clients."""
        for runner in (self.runner, self._large):
            if runner is not None:
                await runner.aclose()

    async def __aenter__(self) -> SmallModelWorker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"SmallModelWorker({self.choice.backend!r}, {self.choice.model!r}, cascade={list(self.cascade)})"


def receipt_score(receipt: ParsedReceipt) -> float:
    """How sure a parse is, for escalation: its calibrated total confidence, else its consistency score."""
    return receipt.field_confidence.get("total", receipt.confidence)


def _reported(receipt: ParsedReceipt) -> ParsedReceipt:
    report_mode(receipt.mode)
    report_count(f"tier:{receipt.mode}")
    return receipt
