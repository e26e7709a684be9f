"""The confidence cascade: cheap tiers answer what they are sure of, and pass the rest on.

A tier is anything with a ``name`` and ``async classify(names, labels) -> list[Prediction]``: the keyword
rules, the embedded MiniLM classifier, a small LLM, the large model. The cascade asks the first tier about
every name; each answer at or above that tier's threshold is final, and the remaining names go to the next
tier. When no tier is sure of a name, the most confident answer any tier gave wins (a tie goes to the
later tier). That matters when a later tier is weak on a taxonomy: on the expense taxonomy the embedded
tier learns from the keywords themselves, so an unsure keyword answer with real evidence often beats it.
With ``unsure="last"`` the last tier that answered wins instead: right when that tier learned from
labelled examples of the taxonomy (on Instacart departments its unsure answers beat the keywords' unsure
ones, and the most-confident rule cost 0.3 to 0.5 points of accuracy).

If a later tier fails at run time (a :class:`~orchestrator.errors.RunError`, e.g. a model server down),
its names keep the previous tier's answers and a warning is logged: the cascade degrades to the tiers
that work. Set-up errors (:class:`~orchestrator.errors.UserError`) propagate. A tier may also abstain on
some names (None in its answer: a model call that failed for one batch, a spent budget); those names go on
to the next tier, or keep the earlier answers.

Inside a plan run the cascade reports, per tier, ``report_mode(name)`` and
``report_count("tier:<name>", n)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

from orchestrator.context import report_count, report_mode
from orchestrator.errors import ConfigurationError, RunError
from orchestrator.rules.tier import Prediction, Tier

__all__ = ["DEFAULT_THRESHOLD", "Cascade", "Prediction", "Tier"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.8
"""A tier's answer is final at this confidence or above (unless a per-tier threshold says otherwise)."""


class Cascade:
    """Tiers in order, each answering what it is sure of. A cascade is itself a tier."""

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        name: str = "cascade",
        unsure: Literal["most_confident", "last"] = "most_confident",
    ) -> None:
        """Set up the cascade.

        Args:
            tiers: Cheapest first.
            threshold: Confidence at which a tier's answer is final.
            thresholds: Per-tier thresholds by tier name, overriding `threshold`.
            name: This cascade's name, when it is used as a tier.
            unsure: Which answer stands when no tier is sure: the ``most_confident`` one (tiers whose
                confidences are comparable, e.g. an embedded tier that learned from the keywords themselves),
                or the ``last`` tier's (a later tier that learned from labelled examples of the taxonomy, whose
                unsure answers beat the earlier tiers' unsure ones; see ``evaluation.categories``).

        Raises:
            ConfigurationError: No tiers, a threshold outside [0, 1], or a threshold for an unknown tier.
        """
        if not tiers:
            raise ConfigurationError("a cascade needs at least one tier")
        self.tiers = list(tiers)
        self.thresholds = dict(thresholds or {})
        names = {tier.name for tier in self.tiers}
        unknown = sorted(set(self.thresholds) - names)
        if unknown:
            raise ConfigurationError(f"thresholds for unknown tiers {unknown}; tiers are {sorted(names)}")
        for value in [threshold, *self.thresholds.values()]:
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"a cascade threshold must be between 0 and 1, not {value}")
        if unsure not in ("most_confident", "last"):
            raise ConfigurationError(f"unsure must be 'most_confident' or 'last', not {unsure!r}")
        self.threshold = threshold
        self.name = name
        self.unsure = unsure

    def threshold_for(self, tier: Tier) -> float:
        """The confidence at which `tier`'s answer is final."""
        return self.thresholds.get(tier.name, self.threshold)

    async def classify(self, names: Sequence[str], labels: Sequence[str]) -> list[Prediction]:
        """Classify `names`; each prediction's `tier` says which tier answered it."""
        results: list[Prediction | None] = [None] * len(names)
        pending = list(range(len(names)))
        best: dict[int, Prediction] = {}  # the most confident unsure answer so far, per name
        for tier in self.tiers:
            if not pending:
                break
            try:
                predictions = await tier.classify([names[i] for i in pending], labels)
            except RunError as exc:
                if not best:
                    raise
                logger.warning("tier %r failed (%s); %d items keep earlier answers", tier.name, exc, len(pending))
                report_count(f"tier_failed:{tier.name}", len(pending))
                break
            if len(predictions) != len(pending):
                raise RunError(f"tier {tier.name!r} gave {len(predictions)} predictions for {len(pending)} names")
            threshold = self.threshold_for(tier)
            still: list[int] = []
            for index, prediction in zip(pending, predictions, strict=True):
                if prediction is None:  # the tier abstained: the next one is asked
                    still.append(index)
                    continue
                answer = Prediction(prediction.label, prediction.confidence, prediction.tier or tier.name)
                if answer.confidence >= threshold:
                    results[index] = answer
                    continue
                if index not in best or self.unsure == "last" or answer.confidence >= best[index].confidence:
                    best[index] = answer
                still.append(index)
            pending = still
        for index in pending:  # no tier was sure (or a tier failed): the most confident answer
            if index not in best:
                raise RunError(f"no tier of {self.name!r} answered {names[index]!r}")
            results[index] = best[index]
        final = [r for r in results if r is not None]
        counts: dict[str, int] = {}
        for prediction in final:
            tier_name = prediction.tier or self.name
            counts[tier_name] = counts.get(tier_name, 0) + 1
        for tier_name, count in counts.items():
            report_mode(tier_name)
            report_count(f"tier:{tier_name}", count)
        return final
