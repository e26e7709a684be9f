"""Chat models driven by Python, for testing code that plans, with no network and no model.

Like pydantic-ai's ``FunctionModel``, these are real :class:`~orchestrator.providers.ChatModel`
implementations, so a test goes through the planner exactly as production does:

    def model(messages, info):
        return {"steps": [{"id": "a", "tool": "double", "args": {"x": 2}}], "output": "step:a"}

    planner = LargePlanner(chat_model=FunctionChatModel(model), registry=my_tools, library=False)
    planner = FunctionPlanner(model, registry=my_tools)          # the same, shorter
    planner = ScriptedPlanner(plan_json, fixed_plan_json, registry=my_tools)

A function may return a text, a JSON value (sent as its JSON text), an iterable of text pieces (streamed one
by one), or an async iterator of pieces: between pieces it may await anything, which lets a test hold the
"model" mid-plan and check what already started. Raise :class:`~orchestrator.errors.ModelError` to fail.
:class:`ScriptedChatModel` answers from a queue instead.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.context import Usage
from orchestrator.errors import ModelError
from orchestrator.providers.base import Completion, DeltaCallback, Message, StreamCollector
from orchestrator.providers.pricing import cost_usd
from orchestrator.registry import ToolRegistry

if TYPE_CHECKING:
    from orchestrator.planner.large import LargePlanner


@dataclass(frozen=True)
class CallInfo:
    """What the model was asked, besides the messages."""

    index: int
    json_schema: dict[str, Any] | None
    schema_name: str
    streamed: bool
    max_tokens: int | None


ModelFunction = Callable[[list[Message], CallInfo], Any]


class FunctionChatModel:
    """A chat model whose answers come from `function(messages, info)` (sync or async).

    Args:
        function: returns the answer (see the module docstring).
        model: the model id to report; usage is priced by it (unknown ids cost 0).
        provider: the provider name to report.
        chunk_chars: characters per streamed piece when the answer is a single text.
    """

    def __init__(
        self, function: ModelFunction, *, model: str = "function", provider: str = "function", chunk_chars: int = 4
    ) -> None:
        self.function = function
        self.model = model
        self.provider = provider
        self.chunk_chars = max(1, chunk_chars)
        self.calls: list[list[Message]] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        schema_name: str = "output",
        temperature: float = 0.0,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        """Answer by calling the function; stream its pieces to `on_delta` when given."""
        started = time.perf_counter()
        self.calls.append(list(messages))
        info = CallInfo(len(self.calls) - 1, json_schema, schema_name, on_delta is not None, max_tokens)
        answer = self.function(list(messages), info)
        if inspect.isawaitable(answer):
            answer = await answer
        collector = StreamCollector(on_delta, started)
        if isinstance(answer, AsyncIterator):
            async for piece in answer:
                collector.add(str(piece))
        else:
            for piece in self._pieces(answer):
                collector.add(piece)
        text = collector.text
        input_tokens = sum(4 + math.ceil(len(m.content) / 4) for m in messages)
        output_tokens = max(1, math.ceil(len(text) / 4))
        return Completion(
            text=text,
            usage=Usage(
                calls=1,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd(self.model, input_tokens, output_tokens) if self.model != "function" else 0.0,
            ),
            model=self.model,
            provider=self.provider,
            latency_s=time.perf_counter() - started,
            structured=json_schema is not None,
            finish_reason="stop",
            first_delta_s=collector.first_delta_s,
        )

    def _pieces(self, answer: Any) -> Iterable[str]:
        if isinstance(answer, str):
            return [answer[i : i + self.chunk_chars] for i in range(0, len(answer), self.chunk_chars)] or [""]
        if isinstance(answer, dict):
            return self._pieces(json.dumps(answer))
        if isinstance(answer, Iterable):
            return [str(piece) for piece in answer]
        return self._pieces(json.dumps(answer))

    async def aclose(self) -> None:
        """Nothing to close."""


class ScriptedChatModel(FunctionChatModel):
    """A chat model that answers from a queue: texts, JSON values, exceptions, or functions of the call.

    model = ScriptedChatModel('{"steps": [...]}', ModelError("boom", retryable=True), {...})
    """

    def __init__(self, *replies: Any, model: str = "function", provider: str = "function") -> None:
        self.replies: deque[Any] = deque(replies)
        super().__init__(self._next, model=model, provider=provider)

    def enqueue(self, *replies: Any) -> ScriptedChatModel:
        """Queue more replies."""
        self.replies.extend(replies)
        return self

    def _next(self, messages: list[Message], info: CallInfo) -> Any:
        if not self.replies:
            raise ModelError("ScriptedChatModel: no scripted reply left", retryable=False)
        reply = self.replies.popleft()
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(messages, info)
        return reply


def FunctionPlanner(function: ModelFunction, *, registry: ToolRegistry, **options: Any) -> LargePlanner:
    """A :class:`LargePlanner` whose model is `function` (see :class:`FunctionChatModel`); no plan library."""
    from orchestrator.planner.large import LargePlanner

    options.setdefault("library", False)
    return LargePlanner(chat_model=FunctionChatModel(function), registry=registry, **options)


def ScriptedPlanner(*replies: Any, registry: ToolRegistry, **options: Any) -> LargePlanner:
    """A :class:`LargePlanner` whose model answers `replies` in order (see :class:`ScriptedChatModel`)."""
    from orchestrator.planner.large import LargePlanner

    options.setdefault("library", False)
    return LargePlanner(chat_model=ScriptedChatModel(*replies), registry=registry, **options)


__all__ = ["CallInfo", "FunctionChatModel", "FunctionPlanner", "ModelFunction", "ScriptedChatModel", "ScriptedPlanner"]
