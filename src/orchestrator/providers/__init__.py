"""Model providers: one small interface, :class:`ChatModel`, over OpenAI, Azure OpenAI, Anthropic and Ollama.

    >>> from orchestrator.providers import Message, make_chat_model
    >>> model = make_chat_model("ollama", "phi3")  # doctest: +SKIP
    >>> completion = await model.complete([Message.user("Classify: coffee")])  # doctest: +SKIP

The SDK-backed adapters (:class:`OpenAIChatModel`, :class:`AnthropicChatModel`) are imported on first
use, so this package imports without the ``openai`` and ``anthropic`` extras.

A layer beside the keyword rules: used by the planner, the small-model worker and ``synthesize``; it knows
none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.providers.base import ChatModel, Completion, DeltaCallback, Message
from orchestrator.providers.factory import DEFAULT_MODELS, PROVIDERS, make_chat_model
from orchestrator.providers.ollama import OllamaChatModel
from orchestrator.providers.pricing import PRICES, Price, cost_usd, load_prices, price_for

if TYPE_CHECKING:
    from orchestrator.providers.anthropic import AnthropicChatModel
    from orchestrator.providers.openai import OpenAIChatModel

__all__ = [
    "DEFAULT_MODELS",
    "PRICES",
    "PROVIDERS",
    "AnthropicChatModel",
    "ChatModel",
    "Completion",
    "DeltaCallback",
    "Message",
    "OllamaChatModel",
    "OpenAIChatModel",
    "Price",
    "cost_usd",
    "load_prices",
    "make_chat_model",
    "price_for",
]

_LAZY = {
    "AnthropicChatModel": "orchestrator.providers.anthropic",
    "OpenAIChatModel": "orchestrator.providers.openai",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
