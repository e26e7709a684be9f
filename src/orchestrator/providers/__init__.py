"""Model providers: one small interface, :class:`ChatModel`, over OpenAI, Azure OpenAI, Anthropic and Ollama.

    >>> from orchestrator.providers import Message, make_chat_model
    >>> model = make_chat_model("ollama", "phi3")  # doctest: +SKIP
    >>> completion = await model.complete([Message.user("Classify: coffee")])  # doctest: +SKIP

Every name is imported on first use, so importing this package (or :mod:`.configured`) loads no HTTP client
and no SDK, and works without the ``openai`` and ``anthropic`` extras.

A layer beside the keyword rules: used by the planner, the small-model worker and ``synthesize``; it knows
none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.providers.anthropic import AnthropicChatModel
    from orchestrator.providers.base import ChatModel, Completion, DeltaCallback, Message
    from orchestrator.providers.factory import DEFAULT_MODELS, PROVIDERS, make_chat_model
    from orchestrator.providers.ollama import OllamaChatModel
    from orchestrator.providers.openai import OpenAIChatModel
    from orchestrator.providers.pricing import PRICES, Price, cost_usd, load_prices, price_for

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
    "AnthropicChatModel": "anthropic",
    "ChatModel": "base",
    "Completion": "base",
    "DeltaCallback": "base",
    "Message": "base",
    "DEFAULT_MODELS": "factory",
    "PROVIDERS": "factory",
    "make_chat_model": "factory",
    "OllamaChatModel": "ollama",
    "OpenAIChatModel": "openai",
    "PRICES": "pricing",
    "Price": "pricing",
    "cost_usd": "pricing",
    "load_prices": "pricing",
    "price_for": "pricing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
