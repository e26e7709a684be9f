"""Cascade tiers besides the keyword rules and the embedded classifier: a generative model, and a function.

:class:`ModelTier` asks a :class:`~orchestrator.small_model_worker.runner.ModelRunner` to label the names
it is given, in batched calls; where a call failed or the budget is spent it abstains (None), and the
cascade keeps the earlier tiers' answers for those names. :class:`FunctionTier` turns a per-text keyword
function (the ``small_model`` tool's rules) into a tier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from orchestrator.rules.tier import Prediction
from orchestrator.small_model_worker.runner import ModelRunner

__all__ = ["FunctionTier", "ModelTier"]


class ModelTier:
    """A generative model as a cascade tier (its name is the model's mode, e.g. ``ollama:phi3``).

    Args:
        runner: the model, with its cache, batching and budget.
        task: the cache's task name (``classify``, ``categorize``, ``sentiment``).
        descriptions: label -> what it means, given to the model.
        instruction: one more sentence for the system prompt.
    """

    def __init__(
        self,
        runner: ModelRunner,
        *,
        task: str = "classify",
        descriptions: Mapping[str, str] | None = None,
        instruction: str = "",
    ) -> None:
        self.runner = runner
        self.task = task
        self.descriptions = dict(descriptions or {})
        self.instruction = instruction

    @property
    def name(self) -> str:
        """The model's mode."""
        return self.runner.name

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction | None]:
        """Labels from the model; None where it could not answer."""
        answers = await self.runner.label(self.task, names, labels, self.descriptions, instruction=self.instruction)
        return [Prediction(a[0], a[1], self.name) if a is not None else None for a in answers]


class FunctionTier:
    """A tier from a function ``(text, labels) -> (label, confidence)``; no I/O, no model."""

    def __init__(self, name: str, function: Callable[[str, Sequence[str]], tuple[str, float]]) -> None:
        self.name = name
        self.function = function

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        """Apply the function to each name."""
        out = []
        for name in names:
            label, confidence = self.function(name, labels)
            out.append(Prediction(label, confidence, self.name))
        return out
