"""The large planner: a request in plain language becomes a plan that passed the validator, once per request.

    planner = LargePlanner(provider="openai")              # or anthropic, ollama, openai_compatible,
    plan = await planner.generate_plan(                    # azure_openai, library, or None to choose
        "Process this receipt and categorize items", context={"image_path": "receipt.png"}
    )
    done = await planner.run("Process this receipt ...", {"image_path": "receipt.png"}, on_event=print)
    done.plan, done.result, done.planning.usage

What it guarantees:

- A plan it returns has passed :func:`~orchestrator.plan.validate.check_plan` against the planner's
  registry, and its inputs fit the context (every context key declared, nothing else required). It is a
  :class:`~orchestrator.plan.model.Plan`; the executor accepts it as is.
- An invalid answer is sent back with the validator's issues, at most ``max_attempts`` answers in all;
  then :class:`~orchestrator.errors.PlanningError` carries the last issues, the attempts and the last
  output. A step naming a tool that is not registered never runs.
- :meth:`LargePlanner.run` streams the answer and starts each step as soon as its JSON object is complete
  and its dependencies are done (:mod:`orchestrator.planner._stream`), then replans after failed steps.
- Repeated requests are served from the :class:`~orchestrator.planner.library.PlanLibrary`, with no call.
- Every model call is accounted for (see :mod:`orchestrator.planner.report`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from orchestrator.embeddings import embeddings_available, shared_embedder
from orchestrator.errors import ConfigurationError, InputError, ModelError, PlanningError
from orchestrator.executor import ConcurrencyLimits, EventHandler, RetryPolicy, RunResult, execute_plan
from orchestrator.executor.events import as_handlers
from orchestrator.executor.inputs import prepare_inputs
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.limits import Limits, ModelPlanLimits
from orchestrator.plan.model import Plan, plan_json_schema
from orchestrator.plan.validate import CompiledPlan, check_plan, validate_plan
from orchestrator.planner._prompts import repair_prompt, request_prompt, system_prompt
from orchestrator.planner._reuse import CONFIGURE, lookup_plan, remember_plan
from orchestrator.planner._stream import stream_and_run
from orchestrator.planner.choose import LIBRARY, PROBE_TIMEOUT_S, ProviderChoice, choose_provider, normalise_provider
from orchestrator.planner.library import DEFAULT_THRESHOLD, PlanLibrary
from orchestrator.planner.reader import JSONReadError, read_plan_json
from orchestrator.planner.replan import refine, replan_loop
from orchestrator.planner.report import PlannedRun, PlanningReport, Session
from orchestrator.providers import ChatModel, Completion, DeltaCallback, Message, make_chat_model
from orchestrator.providers.pricing import PriceOverrides
from orchestrator.registry import ToolRegistry
from orchestrator.settings import Settings, current_settings
from orchestrator.toolbox import default_registry

logger = logging.getLogger(__name__)

SCHEMA_NAME = "plan"


class LargePlanner:
    """Turns requests into validated plans with a large model, and runs them.

    Args:
        provider: ``openai``, ``anthropic``, ``ollama``, ``openai_compatible``, ``azure_openai``, ``library``
            (stored plans only, no model), or None to choose (see :mod:`orchestrator.planner.choose`).
        model: the model id (default: ``PLANNER_MODEL``, else the provider's default).
        registry: the tools plans may use (default: built-ins and plugins).
        settings: keys, URLs and the library's home (default: :func:`current_settings`).
        library: a plan library, True for the default one under ``ORCHESTRATOR_HOME``, False for none.
        similar_requests: reuse plans of similar requests (MiniLM embeddings), not only exact repeats.
        similarity_threshold: the least cosine similarity that counts as the same request.
        chat_model: a ready chat model to use instead of building one (tests, custom back-ends).
        max_attempts: model answers allowed for one plan (the first and its repairs).
        max_replans: revisions after failed steps in :meth:`run`.
        timeout_s: per-attempt timeout of a model call.
        max_retries: the client's own retries of a failed call (429, 5xx, connection errors).
        max_tokens: cap on the model's output.
        prices: price overrides (see :mod:`orchestrator.providers.pricing`).
        stream: whether :meth:`run` streams the plan and starts steps while it is being written.
        probe_timeout_s: how long to wait for a local Ollama when choosing.
        limits: concurrency limits for runs.
        retry: retry backoff for runs.
        **provider_options: passed to :func:`~orchestrator.providers.make_chat_model` (``api_key``,
            ``base_url``, ``endpoint``, ``api_version``, ``client``, ...).
    """

    def __init__(
        self,
        provider: str | None = None,
        model: str | None = None,
        *,
        registry: ToolRegistry | None = None,
        settings: Settings | None = None,
        library: PlanLibrary | bool = True,
        similar_requests: bool = True,
        similarity_threshold: float = DEFAULT_THRESHOLD,
        chat_model: ChatModel | None = None,
        max_attempts: int = 3,
        max_replans: int = 2,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        max_tokens: int = 4096,
        prices: PriceOverrides | None = None,
        stream: bool = True,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        limits: ConcurrencyLimits | None = None,
        retry: RetryPolicy | None = None,
        **provider_options: Any,
    ) -> None:
        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if max_replans < 0:
            raise ConfigurationError("max_replans cannot be negative")
        self.provider = normalise_provider(provider) if provider is not None else None
        self.model = model
        self.registry = registry if registry is not None else default_registry()
        self.settings = settings if settings is not None else current_settings()
        if library is True:
            embedder = shared_embedder() if similar_requests and embeddings_available() else None
            library = PlanLibrary(settings=self.settings, embedder=embedder, threshold=similarity_threshold)
        self.library: PlanLibrary | None = library or None
        self.similar_requests = similar_requests
        self.max_attempts = max_attempts
        self.max_replans = max_replans
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.prices = prices
        self.stream = stream
        self.probe_timeout_s = probe_timeout_s
        self.limits = limits
        self.retry = retry
        self.plan_limits: Limits = ModelPlanLimits.from_settings(self.settings)
        self._provider_options = provider_options
        self._chat_model = chat_model
        self._owns_model = False
        self._choice: ProviderChoice | None = None
        self._system: str | None = None
        self._schema = plan_json_schema()

    # -- which model ------------------------------------------------------------------------------

    @property
    def choice(self) -> ProviderChoice | None:
        """The planner chosen (after the first request, or :meth:`resolve`)."""
        return self._choice

    @property
    def choice_reason(self) -> str | None:
        """One line: which planner was chosen and why."""
        return self._choice.describe() if self._choice is not None else None

    async def resolve(self) -> ProviderChoice:
        """Choose the provider (once): explicit, PLANNER_PROVIDER, a key, a local Ollama, else the library."""
        if self._choice is None:
            if self._chat_model is not None:
                model = self._chat_model
                self._choice = ProviderChoice(model.provider, model.model, "a chat model was passed in")
            else:
                choice = await choose_provider(
                    self.settings, provider=self.provider, model=self.model, probe_timeout_s=self.probe_timeout_s
                )
                self._choice = self._choice or choice  # a concurrent first request may have chosen meanwhile
        return self._choice

    async def _model(self) -> ChatModel:
        if self._chat_model is not None:
            return self._chat_model
        choice = await self.resolve()
        if self._chat_model is None:  # checked again after the await: no await below, so one model is made
            options = dict(self._provider_options)
            options.setdefault("timeout_s", self.timeout_s)
            options.setdefault("max_retries", self.max_retries)
            if self.prices is not None:
                options.setdefault("prices", self.prices)
            if choice.provider == "openai_compatible":
                options.setdefault("base_url", self.settings.openai_base_url)
                options.setdefault("api_key", self.settings.openai_api_key)
            self._chat_model = make_chat_model(choice.provider, choice.model, settings=self.settings, **options)
            self._owns_model = True
        return self._chat_model

    async def aclose(self) -> None:
        """Close the model client the planner made."""
        if not self._owns_model:
            return
        model, self._chat_model, self._owns_model = self._chat_model, None, False
        close = getattr(model, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> LargePlanner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- public API -------------------------------------------------------------------------------

    async def generate_plan(
        self, request: str, context: Mapping[str, Any] | None = None, *, on_event: EventHandler | None = None
    ) -> Plan:
        """A validated plan for `request`; `context` values become its inputs (see the module docstring).

        Raises:
            PlanningError: no valid plan within ``max_attempts`` answers, or the model failed.
            ConfigurationError: a key or endpoint is missing, or the library has no plan for the request.
        """
        plan, _ = await self.plan_with_report(request, context, on_event=on_event)
        return plan

    async def plan_once(self, request: str, context: Mapping[str, Any] | None = None) -> Plan:
        """One plan for a whole batch (one model call at most); the same as :meth:`generate_plan`."""
        return await self.generate_plan(request, context)

    async def plan_with_report(
        self, request: str, context: Mapping[str, Any] | None = None, *, on_event: EventHandler | None = None
    ) -> tuple[Plan, PlanningReport]:
        """:meth:`generate_plan`, plus how the plan was made and what it cost."""
        context = dict(context or {})
        session = Session(as_handlers(on_event))
        choice = await self.announce(session)
        match = await lookup_plan(self, request, context, session, library_mode=choice.provider == LIBRARY)
        if match is not None:
            return match.plan, session.report
        compiled = await self.generate(session, self.first_messages(request, context), context)
        await remember_plan(self, request, compiled.plan, session)
        return compiled.plan, session.report

    async def run(
        self,
        request: str,
        context: Mapping[str, Any] | None = None,
        *,
        on_event: EventHandler | Iterable[EventHandler] | None = None,
        stream: bool | None = None,
    ) -> PlannedRun:
        """Plan `request` and run it, replanning after failed steps (at most ``max_replans`` times).

        With streaming (the default), steps start while the model is still writing the plan. The
        result's usage includes the planner's; ``planning`` holds the planner's part and every note.
        """
        context = dict(context or {})
        session = Session(as_handlers(on_event))
        choice = await self.announce(session)
        match = await lookup_plan(self, request, context, session, library_mode=choice.provider == LIBRARY)
        if match is not None:
            compiled = validate_plan(match.plan, self.registry, limits=self.plan_limits)
            session.announce(compiled)
            result = await self.execute(compiled, context, session)
        elif self.stream if stream is None else stream:
            compiled, result = await stream_and_run(self, request, context, session)
            await remember_plan(self, request, compiled.plan, session)
        else:
            compiled = await self.generate(session, self.first_messages(request, context), context)
            await remember_plan(self, request, compiled.plan, session)
            session.announce(compiled)
            result = await self.execute(compiled, context, session)
        compiled, result = await replan_loop(self, compiled, result, context, session)
        return PlannedRun(compiled.plan, session.with_usage(result), session.report)

    async def refine_plan(
        self,
        plan: Plan,
        feedback: str | None = None,
        *,
        result: RunResult | None = None,
        context: Mapping[str, Any] | None = None,
        on_event: EventHandler | None = None,
    ) -> Plan:
        """A revised plan for the remaining work, given the user's `feedback` and/or a run's `result`.

        The model sees the plan, the failed steps and their errors, and summaries of completed outputs.
        Rerun it with ``execute_plan(revised, ..., completed=reusable_outputs(...))`` to reuse them.
        """
        session = Session(as_handlers(on_event))
        choice = await self.announce(session)
        if choice.provider == LIBRARY:
            raise ConfigurationError(f"revising a plan needs a planner model: {CONFIGURE}")
        compiled = await refine(self, session, plan, feedback, result, context)
        return compiled.plan

    # -- the pieces ---------------------------------------------------------------------------------

    def system_message(self) -> Message:
        """The system prompt: the plan format and its schema, the rules, routing guidance, the tool catalog."""
        if self._system is None:
            self._system = system_prompt(self.registry)
        return Message.system(self._system)

    def first_messages(self, request: str, context: Mapping[str, Any]) -> list[Message]:
        """The system prompt and the request with its context."""
        return [self.system_message(), Message.user(request_prompt(request, context))]

    async def announce(self, session: Session) -> ProviderChoice:
        """Resolve the provider and note which one was chosen, and why."""
        choice = await self.resolve()
        report = session.report
        report.provider, report.model, report.choice_reason = choice.provider, choice.model, choice.reason
        session.note(choice.describe(), "provider", provider=choice.provider, model=choice.model, reason=choice.reason)
        return choice

    async def call(
        self,
        session: Session,
        messages: list[Message],
        *,
        purpose: str,
        attempt: int,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        """One model call, accounted for in `session`."""
        model = await self._model()
        try:
            completion = await model.complete(
                messages,
                json_schema=self._schema,
                schema_name=SCHEMA_NAME,
                max_tokens=self.max_tokens,
                timeout_s=self.timeout_s,
                on_delta=on_delta,
            )
        except ModelError as exc:
            session.note(f"planner call ({purpose}) failed: {exc}", "planner_error", purpose=purpose, attempt=attempt)
            raise
        session.record(completion, purpose=purpose, attempt=attempt, streamed=on_delta is not None)
        return completion

    def check(
        self, text: str, context: Mapping[str, Any] | None, *, truncated: bool = False
    ) -> tuple[Any, CompiledPlan | None, list[PlanIssue]]:
        """Read and validate a model's answer: (the JSON data, the compiled plan or None, the issues)."""
        try:
            data = read_plan_json(text)
        except JSONReadError as exc:
            hint = "the output limit cut the answer" if truncated else "answer with one JSON object and nothing else"
            return None, None, [PlanIssue(code="not_json", message=str(exc), hint=hint)]
        compiled, issues = check_plan(data, self.registry, limits=self.plan_limits)
        if compiled is None:
            return data, None, issues
        if context is not None:
            try:
                prepare_inputs(compiled.plan.inputs, context)
            except InputError as exc:
                issue = PlanIssue(
                    code="inputs_mismatch",
                    message=str(exc),
                    field="inputs",
                    hint="declare every context key as an input, with the type shown, and require no other input",
                )
                return data, None, [issue]
        return data, compiled, []

    async def generate(
        self,
        session: Session,
        messages: list[Message],
        context: Mapping[str, Any] | None,
        *,
        purpose: str = "plan",
        attempt: int = 0,
        last_output: str = "",
        last_issues: Iterable[PlanIssue] = (),
    ) -> CompiledPlan:
        """The re-ask loop: call, validate, send the issues back; at most ``max_attempts`` answers in all."""
        issues = list(last_issues)
        while attempt < self.max_attempts:
            attempt += 1
            try:
                completion = await self.call(
                    session, messages, purpose=purpose if attempt == 1 else f"{purpose}: repair", attempt=attempt
                )
            except ModelError as exc:
                raise PlanningError(
                    f"planning failed on attempt {attempt}: {exc}", attempts=attempt, last_output=last_output
                ) from exc
            last_output = completion.text
            _, compiled, issues = self.check(completion.text, context, truncated=completion.truncated)
            if compiled is not None:
                session.report.attempts = attempt
                return compiled
            session.rejected(attempt, issues)
            messages = [
                *messages,
                Message.assistant(completion.text or "(empty answer)"),
                Message.user(repair_prompt(issues, truncated=completion.truncated)),
            ]
        raise PlanningError(
            f"the planner gave no valid plan in {attempt} attempt{'s' if attempt != 1 else ''}; "
            "the last answer's problems:",
            issues=issues,
            attempts=attempt,
            last_output=last_output,
        )

    async def execute(
        self,
        compiled: CompiledPlan,
        context: Mapping[str, Any],
        session: Session,
        completed: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run a validated plan under this planner's limits, reporting to the session's handlers."""
        return await execute_plan(
            compiled,
            context,
            registry=self.registry,
            on_event=session.handlers,
            limits=self.limits,
            retry=self.retry,
            run_id=session.run_id,
            completed=completed or None,
        )


__all__ = ["LargePlanner"]
