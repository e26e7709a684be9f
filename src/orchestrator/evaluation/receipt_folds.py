"""Vendor-held-out evaluation of the receipt parser: K folds, each vendor's receipts in exactly one fold.

How it works:

* **Vendors.** A receipt's vendor is its labelled company (SROIE) or store name (WildReceipt), normalised
  (upper case, punctuation and spaces removed, company forms such as SDN BHD / ENTERPRISE / (M) and
  leading articles dropped). Receipts of one vendor always share a fold, so a fold's score says how the
  parser does on vendors it was not developed or fitted on.
* **Folds.** Vendors are dealt to K folds, biggest first, each to the fold with the fewest receipts so
  far (ties by a hash of the name): deterministic, balanced, no randomness to seed.
* **Scores.** Every receipt is parsed once (the rules do not learn). Each field is scored per fold, and
  the report gives each field's mean and spread (population standard deviation) over the folds.
* **Confidence.** For each fold, the confidence weights are fitted on the *other* folds' receipts and
  applied to this one, so the reliability table (confidence bins against observed accuracy) and the
  escalation curve (accuracy of the receipts kept against the share sent to the next tier) are measured
  on receipts the weights never saw.

With ``ocr`` set, images are read through :class:`~orchestrator.evaluation.ocr_cache.OcrCache`, so a
second evaluation reads no image again.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.evaluation.receipts import (
    _image_for,
    _layout_of,
    _score_sroie,
    _score_wildreceipt,
    _Tally,
    receipt_ids,
)
from orchestrator.rules.models import OcrLine, OcrResult, ParsedReceipt
from orchestrator.rules.receipt.confidence import (
    FEATURES,
    FIELDS,
    ConfidenceWeights,
    FieldWeights,
    field_confidence,
    shipped_weights,
)
from orchestrator.rules.receipt.layout_model import LayoutModel
from orchestrator.rules.receipt.lexicon import Lexicon, learn_lexicon
from orchestrator.rules.receipt.parse import parse_with_evidence

__all__ = [
    "FoldReport",
    "LabelledReceipt",
    "PooledEscalation",
    "assign_folds",
    "evaluate_folds",
    "fit_weights",
    "fold_layout_models",
    "fold_lexicons",
    "parse_in_fold",
    "unparsed",
    "label_texts",
    "load_labelled",
    "pooled_escalation",
    "vendor_key",
]

_COMPANY_FORMS = re.compile(
    r"\b(?:SDN|BHD|S/B|SB|PTE|LTD|LIMITED|INC|LLC|CORP|CO|ENTERPRISES?|TRADING|HOLDINGS|THE|\(M\)|M)\b"
)

ReadText = Callable[[Path], Awaitable[str | OcrResult]]
"""An OCR function: image path -> its text, or its whole OCR result (text and lines with boxes)."""
Escalate = Callable[[str], Awaitable[ParsedReceipt]]

MIN_SAMPLES = 10
C_REGULARISATION = 1.0
"""Inverse regularisation strength of the logistic models (scikit-learn's C)."""
"""Fewer labelled fields than this are not fitted on; the shipped weights stand in."""
ESCALATION_SHARES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50)
RELIABILITY_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)


def vendor_key(truth: dict[str, Any]) -> str:
    """The normalised vendor name of a label file (SROIE ``company`` or WildReceipt ``Store_name_value``)."""
    if isinstance(truth.get("fields"), dict):
        name = " ".join(str(s) for s in truth["fields"].get("Store_name_value", []))
    else:
        name = str(truth.get("company") or "")
    name = name.upper().replace(".", " ")
    name = _COMPANY_FORMS.sub(" ", name)
    return re.sub(r"[^A-Z0-9]", "", name)


def label_texts(truth: dict[str, Any]) -> list[str]:
    """The seller texts a label file holds (company and address; store name and address boxes)."""
    fields = truth.get("fields")
    if isinstance(fields, dict):
        return [str(box) for key in ("Store_name_value", "Store_addr_value") for box in fields.get(key, [])]
    return [str(truth.get(key) or "") for key in ("company", "address")]


@dataclass(frozen=True)
class LabelledReceipt:
    """One labelled receipt: its id, layout, ground truth and vendor."""

    id: str
    layout: str
    truth: dict[str, Any]
    vendor: str


def load_labelled(folder: Path) -> list[LabelledReceipt]:
    """Every SROIE or WildReceipt label file in `folder` (others are skipped)."""
    out: list[LabelledReceipt] = []
    for receipt in receipt_ids(folder):
        truth = json.loads((folder / f"{receipt}.json").read_text(encoding="utf-8"))
        layout = _layout_of(truth)
        if layout is not None:
            out.append(LabelledReceipt(receipt, layout, truth, vendor_key(truth) or f"?{receipt}"))
    return out


def assign_folds(vendors: dict[str, str], k: int) -> dict[str, int]:
    """Receipt id -> fold (0..k-1), with every vendor's receipts in one fold; deterministic and balanced."""
    if k < 2:
        raise ValueError("folds: need at least 2")
    groups: dict[str, list[str]] = defaultdict(list)
    for receipt, vendor in sorted(vendors.items()):
        groups[vendor].append(receipt)
    if len(groups) < k:
        raise ValueError(f"folds: {len(groups)} vendors cannot fill {k} folds")
    sizes = [0] * k
    fold_of: dict[str, int] = {}

    def order(vendor: str) -> tuple[int, str]:
        return -len(groups[vendor]), hashlib.sha256(vendor.encode()).hexdigest()

    for vendor in sorted(groups, key=order):
        fold = min(range(k), key=lambda f: (sizes[f], f))
        sizes[fold] += len(groups[vendor])
        for receipt in groups[vendor]:
            fold_of[receipt] = fold
    return fold_of


@dataclass
class Parsed:
    """One receipt read and parsed, with the evidence behind its confidences."""

    receipt: LabelledReceipt
    fold: int
    parsed: ParsedReceipt
    evidence: dict[str, list[float]]
    text: str
    lines: list[OcrLine] | None = None


def _score_one(tally: _Tally, item: Parsed) -> None:
    if item.receipt.layout == "sroie":
        _score_sroie(tally, item.receipt.id, item.receipt.truth, item.parsed)
    else:
        _score_wildreceipt(tally, item.receipt.id, item.receipt.truth, item.parsed)


def _field_name(layout: str, field: str) -> str:
    """The evaluation's name for a confidence field: SROIE scores ``company``, WildReceipt ``merchant``."""
    return "company" if field == "merchant" and layout == "sroie" else field


def _outcomes(item: Parsed) -> dict[str, bool]:
    """Per confidence field, whether the parser got it right (fields without ground truth are absent)."""
    tally = _Tally()
    _score_one(tally, item)
    wrong = {miss.field for miss in tally.misses}
    out: dict[str, bool] = {}
    for field in FIELDS:
        name = _field_name(item.receipt.layout, field)
        if tally.scored[name]:
            out[field] = name not in wrong
    return out


def fit_weights(samples: Sequence[tuple[str, list[float], bool]], *, fitted_on: str = "") -> ConfidenceWeights:
    """Fit one logistic model per field on (field, evidence, was it right) samples (needs scikit-learn)."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - the eval extra is installed where this runs
        raise RuntimeError('fitting confidence weights needs scikit-learn: pip install "orchestrator[eval]"') from exc

    fields: dict[str, FieldWeights] = {}
    for field in FIELDS:
        rows = [(values, ok) for name, values, ok in samples if name == field and values and values[0]]
        labels = {ok for _, ok in rows}
        if len(rows) < MIN_SAMPLES:
            continue  # too few to fit: the caller falls back to the shipped weights
        if len(labels) < 2:
            # Too few, or all alike: the smoothed share right, whatever the evidence says.
            share = (sum(ok for _, ok in rows) + 1) / (len(rows) + 2)
            fields[field] = FieldWeights(
                features=list(FEATURES[field]),
                coef=[0.0] * len(FEATURES[field]),
                intercept=round(math.log(share / (1 - share)), 5),
            )
            continue
        model = LogisticRegression(C=C_REGULARISATION, max_iter=1000)
        model.fit([values for values, _ in rows], [int(ok) for _, ok in rows])
        fields[field] = FieldWeights(
            features=list(FEATURES[field]),
            coef=[round(float(c), 5) for c in model.coef_[0]],
            intercept=round(float(model.intercept_[0]), 5),
        )
    return ConfidenceWeights(fitted_on=fitted_on, fields=fields)


def _samples(items: Sequence[Parsed]) -> list[tuple[str, list[float], bool]]:
    return [(field, item.evidence[field], ok) for item in items for field, ok in _outcomes(item).items()]


class FieldScore(BaseModel):
    """A field's score over the folds."""

    mean: float
    spread: float = Field(description="population standard deviation over the folds")
    folds: list[float]
    n: int = Field(description="receipts scored on this field, all folds together")


class ReliabilityRow(BaseModel):
    """One confidence bin: how many fields fell in it, their mean confidence, how many were right."""

    field: str
    low: float
    high: float
    n: int
    confidence: float
    accuracy: float


class EscalationPoint(BaseModel):
    """The least confident `share` of receipts go to the next tier; the rest are kept with this accuracy."""

    share: float
    kept: int
    accuracy: float


class FoldReport(BaseModel):
    """Per-field means and spreads over vendor-held-out folds, with calibration and escalation figures."""

    folder: str
    layout: str
    text: str = Field(description="'provided text' or the OCR back-end")
    k: int
    n: int
    vendors: int
    fields: dict[str, FieldScore]
    reliability: list[ReliabilityRow]
    escalation: list[EscalationPoint] = Field(description="totals kept against the share escalated")
    share_for_98: float | None = Field(
        description="the smallest share escalated (least confident first) that leaves the kept totals >= 98% right"
    )
    receipts: list[dict[str, Any]] = Field(default_factory=list, description="per receipt: fold, confidences, right")
    threshold: float | None = Field(default=None, description="with escalation: the total confidence escalated below")
    answered: dict[str, int] = Field(default_factory=dict, description="with escalation: receipts per answering tier")
    calls: dict[str, int] = Field(default_factory=dict, description="with escalation: model calls per tier")


def _reliability(rows: list[tuple[str, float, bool]]) -> list[ReliabilityRow]:
    out: list[ReliabilityRow] = []
    for field in FIELDS:
        mine = [(c, ok) for name, c, ok in rows if name == field]
        for low, high in zip(RELIABILITY_BINS, RELIABILITY_BINS[1:], strict=False):
            inside = [(c, ok) for c, ok in mine if low <= c < high]
            if inside:
                out.append(
                    ReliabilityRow(
                        field=field,
                        low=low,
                        high=min(high, 1.0),
                        n=len(inside),
                        confidence=round(statistics.fmean(c for c, _ in inside), 3),
                        accuracy=round(sum(ok for _, ok in inside) / len(inside), 3),
                    )
                )
    return out


def escalation_curve(
    scored: Sequence[tuple[float, bool]], shares: Sequence[float] = ESCALATION_SHARES
) -> list[EscalationPoint]:
    """Accuracy of what is kept when the least confident `share` is escalated, for each share."""
    ordered = sorted(scored, key=lambda pair: pair[0])
    out: list[EscalationPoint] = []
    for share in shares:
        kept = ordered[math.ceil(share * len(ordered) - 1e-9) :]
        accuracy = sum(ok for _, ok in kept) / len(kept) if kept else 1.0
        out.append(EscalationPoint(share=share, kept=len(kept), accuracy=round(accuracy, 4)))
    return out


def share_needed(scored: Sequence[tuple[float, bool]], target: float = 0.98) -> float | None:
    """The smallest share escalated (least confident first) after which the kept ones reach `target`."""
    ordered = sorted(scored, key=lambda pair: pair[0])
    right = sum(ok for _, ok in ordered)
    for cut in range(len(ordered)):
        kept = len(ordered) - cut
        if right / kept >= target:
            return round(cut / len(ordered), 4)
        right -= ordered[cut][1]
    return None


async def evaluate_folds(
    folder: Path,
    k: int,
    *,
    read_text: ReadText | None = None,
    text_name: str = "provided text",
    limit: int | None = None,
    escalate: Escalate | None = None,
    threshold: float = 0.9,
    layout: bool = False,
    lexicon: bool = True,
    agreement: bool = True,
) -> FoldReport:
    """Evaluate the parser on `k` vendor-held-out folds of the labelled receipts in `folder`.

    Args:
        folder: a SROIE- or WildReceipt-style folder (``<id>.json`` labels, ``<id>.txt`` or images).
        k: how many folds.
        read_text: an OCR function (image path -> text, or the OCR result, whose lines' boxes the parser
            then reads too); without it the provided ``<id>.txt`` is read.
        text_name: how the report names the text source.
        limit: only the first `limit` receipts (sorted by id).
        escalate: the cascade above the keywords (text -> parsed receipt, ``escalated`` naming the tiers
            asked): a receipt whose held-out total confidence is below `threshold` is parsed by it
            instead, and scored as it answers.
        threshold: the total confidence below which a receipt is escalated.
        layout: read the header with a line-layout model trained, for each fold, on the other folds'
            receipts (``orchestrator.evaluation.train_layout``); without it the keyword rules alone.
        lexicon: repair the header with a lexicon learned, for each fold, from the other folds' labels.
        agreement: train that per-fold layout model even without `layout`, and give the merchant's and the
            address's confidence its agreement with the rules' header (as the shipped model does for users);
            False leaves the layout evidence "absent" (and needs no model training).

    Raises:
        ValueError: fewer vendors than folds, or no labelled receipts.
    """
    folder = Path(folder)
    labelled = load_labelled(folder)[:limit]
    if not labelled:
        raise ValueError(f"{folder}: no SROIE or WildReceipt label files (<id>.json)")
    fold_of = assign_folds({r.id: r.vendor for r in labelled}, k)
    lexicons = fold_lexicons(labelled, fold_of, k) if lexicon else [None] * k
    reads: list[Parsed] = []
    for receipt in labelled:
        lines: list[OcrLine] | None = None
        if read_text is None:
            text = (folder / f"{receipt.id}.txt").read_text(encoding="utf-8")
        else:
            read = await read_text(_image_for(folder, receipt.id))
            text, lines = (read, None) if isinstance(read, str) else (read.text, read.lines)
        reads.append(unparsed(receipt, fold_of[receipt.id], text, lines))
    models = fold_layout_models(reads, k) if layout or agreement else [None] * k
    items = [parse_in_fold(item, lexicons[item.fold], models[item.fold], read_header=layout) for item in reads]

    per_fold: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    calibrated: list[tuple[str, float, bool]] = []
    receipts: list[dict[str, Any]] = []
    answered: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)
    for fold in range(k):
        held = [item for item in items if item.fold == fold]
        weights = fit_weights(_samples([item for item in items if item.fold != fold]), fitted_on=f"folds != {fold}")
        fallback = shipped_weights().model_copy(update={"fields": shipped_weights().fields | weights.fields})
        tally = _Tally()
        for item in held:
            outcomes = _outcomes(item)
            confidences: dict[str, float] = {}
            for field, ok in outcomes.items():
                values = item.evidence[field]
                if not values or not values[0]:
                    confidence = 0.0
                else:
                    confidence = field_confidence({field: values}, fallback)[field]
                confidences[field] = round(confidence, 4)
                calibrated.append((field, confidence, ok))
            record: dict[str, Any] = {"id": item.receipt.id, "fold": fold, "confidence": confidences, "right": outcomes}
            final = item
            if escalate is not None:
                if confidences.get("total", 0.0) < threshold:
                    # Scored as the cascade answers; the keyword parse stays the other folds' training data.
                    final = replace(item, parsed=await escalate(item.text))
                    record["escalated"] = final.parsed.escalated
                    for tier in final.parsed.escalated:
                        calls[tier] += 1
                answered[final.parsed.mode] += 1
                record["answered"] = final.parsed.mode
            _score_one(tally, final)
            receipts.append(record)
        scored = _finish_fold(tally)
        for name, (score, count) in scored.items():
            per_fold[name].append(score)
            counts[name] += count
    fields = {
        name: FieldScore(
            mean=round(statistics.fmean(scores), 4),
            spread=round(statistics.pstdev(scores), 4),
            folds=[round(s, 4) for s in scores],
            n=counts[name],
        )
        for name, scores in sorted(per_fold.items())
    }
    totals = [(c, ok) for name, c, ok in calibrated if name == "total"]
    return FoldReport(
        folder=str(folder),
        layout=labelled[0].layout if len({r.layout for r in labelled}) == 1 else "mixed",
        text=text_name,
        k=k,
        n=len(items),
        vendors=len({r.vendor for r in labelled}),
        fields=fields,
        reliability=_reliability(calibrated),
        escalation=escalation_curve(totals),
        share_for_98=share_needed(totals),
        receipts=receipts,
        threshold=threshold if escalate is not None else None,
        answered=dict(answered),
        calls=dict(calls),
    )


class PooledEscalation(BaseModel):
    """The escalation curve over the receipts of several fold reports together (each receipt's held-out
    total confidence from its own report's folds)."""

    folders: list[str]
    n: int
    escalation: list[EscalationPoint]
    share_for_98: float | None
    reliability: list[ReliabilityRow]


def pooled_escalation(reports: Sequence[FoldReport]) -> PooledEscalation:
    """One escalation curve, and the total's reliability, over every receipt of `reports`: the cascade's view
    when receipts of several sources arrive together and one threshold is applied to all."""
    totals = [
        (float(record["confidence"]["total"]), bool(record["right"]["total"]))
        for report in reports
        for record in report.receipts
        if "total" in record.get("right", {})
    ]
    return PooledEscalation(
        folders=[report.folder for report in reports],
        n=len(totals),
        escalation=escalation_curve(totals),
        share_for_98=share_needed(totals),
        reliability=_reliability([("total", c, ok) for c, ok in totals]),
    )


def fold_lexicons(labelled: Sequence[LabelledReceipt], fold_of: dict[str, int], k: int) -> list[Lexicon]:
    """For each fold, the header lexicon learned from the *other* folds' labels only (never its own)."""
    out: list[Lexicon] = []
    for fold in range(k):
        texts: dict[str, list[str]] = defaultdict(list)
        for receipt in labelled:
            if fold_of[receipt.id] != fold:
                texts[receipt.vendor].extend(label_texts(receipt.truth))
        out.append(learn_lexicon(texts, trained_on=f"folds != {fold}"))
    return out


def unparsed(receipt: LabelledReceipt, fold: int, text: str, lines: Sequence[OcrLine] | None) -> Parsed:
    """A receipt read but not parsed yet (what :func:`fold_layout_models` trains on)."""
    return Parsed(receipt, fold, ParsedReceipt(), {}, text, None if lines is None else list(lines))


def parse_in_fold(item: Parsed, lexicon: Lexicon | None, model: LayoutModel | None, *, read_header: bool) -> Parsed:
    """`item` parsed with its fold's lexicon and layout model (both learned from the other folds only): the
    model reads the header (`read_header`) or is only asked how much it agrees with the rules' header (the
    merchant's and address's confidence evidence); without a model that evidence says "absent"."""
    parsed, found = parse_with_evidence(
        item.text,
        ConfidenceWeights(),
        layout=model if read_header else None,
        lexicon=lexicon,
        lines=item.lines,
        agreement_layout=model,
    )
    return replace(item, parsed=parsed, evidence=found)


def fold_layout_models(items: Sequence[Parsed], k: int) -> list[LayoutModel | None]:
    """For each fold, a line-layout model trained on the other folds' receipts only (their texts, with the
    OCR lines' boxes where read); None for a fold whose other folds label no line of some class (too few
    receipts to train on)."""
    from orchestrator.evaluation.train_layout import receipt_rows, train

    rows = [receipt_rows(item.text, item.receipt.truth, _boxes(item.lines)) for item in items]
    models: list[LayoutModel | None] = []
    for fold in range(k):
        features = [row for item, (x, _) in zip(items, rows, strict=True) if item.fold != fold for row in x]
        labels = [label for item, (_, y) in zip(items, rows, strict=True) if item.fold != fold for label in y]
        try:
            models.append(train(features, labels, trained_on=f"folds != {fold}"))
        except ValueError:  # a class no line of the other folds has
            models.append(None)
    return models


def _boxes(lines: Sequence[OcrLine] | None) -> list[list[float] | None] | None:
    """The boxes of the OCR lines with text (aligned with the parser's lines), or None."""
    if lines is None:
        return None
    boxes = [line.box for line in lines if line.text.strip()]
    return boxes if any(box is not None for box in boxes) else None


def _finish_fold(tally: _Tally) -> dict[str, tuple[float, int]]:
    """Per field: (accuracy or F1 in this fold, receipts or labelled items scored)."""
    out = {name: (tally.right[name] / count, count) for name, count in tally.scored.items() if count}
    for name in tally.expected:
        precision = tally.matched[name] / tally.predicted[name] if tally.predicted[name] else 0.0
        recall = tally.matched[name] / tally.expected[name] if tally.expected[name] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[f"{name}_f1"] = (f1, tally.expected[name])
    return out
