"""The large-model path of `synthesize`: which provider, if any, and one bounded call."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.context import report_mode, report_usage
from orchestrator.errors import ConfigurationError, ModelError
from orchestrator.providers.configured import configured_provider
from orchestrator.settings import current_settings

logger = logging.getLogger(__name__)


class Synthesis(BaseModel):
    text: str
    mode: str = Field(description="which model wrote it, or 'fallback'")
    note: str | None = None


async def synthesize_with_model(instruction: str, data: Any) -> Synthesis | None:
    """Ask the configured large model; None when none is configured. A failing model also gives None
    (logged), so the caller's stated fallback answers instead of failing the run."""
    from orchestrator.providers import Message, make_chat_model

    settings = current_settings()
    provider = configured_provider(settings)
    if provider is None:
        return None
    try:
        model = make_chat_model(provider, settings=settings)
        material = json.dumps(data, ensure_ascii=False, default=str)[:20_000]
        completion = await model.complete(
            [
                Message.system("You write concise, concrete business output from the data given. No preamble."),
                Message.user(f"{instruction}\n\nData (JSON):\n{material}"),
            ],
            max_tokens=800,
            timeout_s=60,
        )
    except (ModelError, ConfigurationError) as exc:
        logger.warning("synthesize: large model %s failed (%s); using the template fallback", provider, exc)
        return None
    report_mode(f"{completion.provider}:{completion.model}")
    report_usage(completion.usage)
    return Synthesis(text=completion.text.strip(), mode=f"{completion.provider}:{completion.model}")
