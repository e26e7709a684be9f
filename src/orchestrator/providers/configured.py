"""Which large-model provider the settings point at (no SDK or HTTP client is imported here)."""

from __future__ import annotations

from orchestrator.settings import Settings

__all__ = ["configured_provider"]


def configured_provider(settings: Settings) -> str | None:
    """The large-model provider the settings point at, or None when none is configured."""
    if settings.planner_provider and settings.planner_provider != "library":
        return settings.planner_provider
    if settings.openai_api_key:
        return "openai"
    if settings.anthropic_api_key:
        return "anthropic"
    if settings.azure_openai_endpoint and settings.azure_openai_api_key:
        return "azure_openai"
    return None
