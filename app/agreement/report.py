"""The agreement figures of a set of judgements, pure: every measure of each scale with its interval, the
primary measure over time, throughput, and the items with most disagreement."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from app.agreement import metrics, votes
from app.agreement.schemas import AttributeAgreement, BucketOut, EstimateOut
from app.agreement.snapshot import CHOICES, Judgements, Memo
from app.agreement.votes import Bucket, Coding, Grouped

PREFERENCE = "preference"  # the one "attribute" of a pairwise project
SERIES_BOOT = 200  # resamples per time bucket: enough for a band, and a series has many buckets
ESTIMATES: Memo[dict[str, metrics.Estimate]] = Memo(4096)  # by content: see remembered()
METRIC_LABELS = {
    "alpha_nominal": "Krippendorff's \N{GREEK SMALL LETTER ALPHA}, nominal",
    "alpha_ordinal": "Krippendorff's \N{GREEK SMALL LETTER ALPHA}, ordinal",
    "alpha_interval": "Krippendorff's \N{GREEK SMALL LETTER ALPHA}, interval",
    "fleiss_kappa": "Fleiss' \N{GREEK SMALL LETTER KAPPA}",
    "gwet_ac1": "Gwet's AC1",
    "percent_agreement": "Percent agreement",
    "percent_agreement_no_ties": "Percent agreement without ties",
}


@dataclass(frozen=True)
class Scale:
    """One attribute: its codings of the judgements and the measures taken on each (name -> coding key)."""

    name: str
    codings: dict[str, Coding]
    measures: dict[str, tuple[str, metrics.Measure]]
    primary: str  # the measure shown over time


def pairwise_scale(judgements: Judgements) -> Scale:
    nominal, signed = votes.pairwise_nominal(judgements), votes.pairwise_signed(judgements)
    no_preference = [float(CHOICES.index("tie")), float(CHOICES.index("both_bad"))]
    return Scale(PREFERENCE, {"nominal": nominal, "signed": signed}, {
        "alpha_nominal": ("nominal", metrics.alpha_measure("nominal", nominal.values)),
        "alpha_ordinal": ("signed", metrics.alpha_measure("ordinal", signed.values)),
        "alpha_interval": ("signed", metrics.alpha_measure("interval", signed.values)),
        "fleiss_kappa": ("nominal", metrics.fleiss_measure()),
        "gwet_ac1": ("nominal", metrics.gwet_measure(len(CHOICES))),
        "percent_agreement": ("nominal", metrics.percent_measure()),
        "percent_agreement_no_ties": ("nominal", metrics.percent_measure(ignore=no_preference)),
    }, primary="alpha_nominal")


def likert_scale(judgements: Judgements, attribute: int, name: str) -> Scale:
    rating = votes.likert(judgements, attribute)
    return Scale(name, {"rating": rating}, {
        "alpha_ordinal": ("rating", metrics.alpha_measure("ordinal", rating.values)),
        "alpha_interval": ("rating", metrics.alpha_measure("interval", rating.values)),
        "alpha_nominal": ("rating", metrics.alpha_measure("nominal", rating.values)),
        "fleiss_kappa": ("rating", metrics.fleiss_measure()),
        "gwet_ac1": ("rating", metrics.gwet_measure(rating.values.size)),
        "percent_agreement": ("rating", metrics.percent_measure()),
    }, primary="alpha_ordinal")


def scales(judgements: Judgements, *, pairwise: bool, attributes: list[str]) -> list[Scale]:
    if pairwise:
        return [pairwise_scale(judgements)]
    return [likert_scale(judgements, i, name) for i, name in enumerate(attributes)]


def _out(estimate: metrics.Estimate) -> EstimateOut:
    return EstimateOut(value=estimate.value, low=estimate.low, high=estimate.high, n_items=estimate.n_items)


def remembered(scale: Scale, names: list[str], units: metrics.Units, *, n_boot: int, seed: int
               ) -> dict[str, metrics.Estimate]:
    """metrics.estimate of the scale's measures `names`, remembered by the content of `units`.

    An estimate depends only on the measures, the item patterns, the resample count and the seed, so a
    remembered one is exact: past time buckets, unchanged by new judgements, are not resampled again.
    """
    digest = hashlib.blake2b(digest_size=16)
    for array in (units.values, units.counts, units.weights):
        digest.update(repr(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    key = (scale.name, len(scale.codings), tuple(names), n_boot, seed, digest.digest())
    measures = {name: scale.measures[name][1] for name in names}
    return ESTIMATES.get(key, lambda: metrics.estimate(measures, units, n_boot=n_boot, seed=seed))


def attribute_agreement(grouped: Grouped, scale: Scale, *, bucket: Bucket, n_boot: int, seed: int
                        ) -> AttributeAgreement:
    estimates: dict[str, metrics.Estimate] = {}
    for key, coding in scale.codings.items():
        units = metrics.collapse(grouped.counts(coding), coding.values)
        wanted = [name for name, (on, _) in scale.measures.items() if on == key]
        estimates.update(remembered(scale, wanted, units, n_boot=n_boot, seed=seed))
    coding = scale.codings[scale.measures[scale.primary][0]]
    return AttributeAgreement(
        attribute=scale.name, judgements=int((coding.index >= 0).sum()), primary=scale.primary,
        metrics={name: _out(estimates[name]) for name in scale.measures},
        over_time=_over_time(grouped, scale, bucket, min(n_boot, SERIES_BOOT), seed))


def _over_time(grouped: Grouped, scale: Scale, bucket: Bucket, n_boot: int, seed: int) -> list[BucketOut]:
    """The primary measure per time bucket; an item belongs to the bucket of its newest judgement."""
    coding = scale.codings[scale.measures[scale.primary][0]]
    counts = grouped.counts(coding)
    voted = counts.sum(axis=1) > 0
    numbers = votes.bucket_of(grouped.latest()[voted], bucket)
    order = np.argsort(numbers, kind="stable")
    counts, numbers = counts[voted][order], numbers[order]
    found, starts = np.unique(numbers, return_index=True)
    series = []
    ends = np.append(starts[1:], len(numbers))[: len(starts)]
    for number, start, end in zip(found, starts, ends, strict=True):
        units = metrics.collapse(counts[start:end], coding.values)
        estimate = remembered(scale, [scale.primary], units, n_boot=n_boot, seed=seed)[scale.primary]
        start = datetime.fromtimestamp(votes.bucket_start(int(number), bucket), UTC)
        series.append(BucketOut(start=start, estimate=_out(estimate)))
    return series


@dataclass(frozen=True)
class Throughput:
    unit: Bucket
    starts: list[datetime]
    counts: list[int]


def throughput(times: NDArray[np.float64]) -> Throughput:
    """Judgements per hour (within two days), day (within 180 days) or week, with empty buckets as 0."""
    span = float(times.max() - times.min()) if times.size else 0.0
    unit: Bucket = "hour" if span <= 2 * votes.DAY else "day" if span <= 180 * votes.DAY else "week"
    if times.size == 0:
        return Throughput(unit, [], [])
    numbers = votes.bucket_of(times, unit)
    first = int(numbers.min())
    counts = np.bincount(numbers - first)
    starts = [datetime.fromtimestamp(votes.bucket_start(first + i, unit), UTC) for i in range(counts.size)]
    return Throughput(unit, starts, [int(c) for c in counts])


@dataclass(frozen=True)
class Disputed:
    item_id: int
    score: float  # nominal: share of disagreeing pairs; Likert: mean squared difference, averaged
    votes: int
    summary: str  # the votes, e.g. "a 2 · tie 1 · b 2"


def most_disputed(grouped: Grouped, scales_: list[Scale], *, limit: int = 10) -> list[Disputed]:
    """The items whose counted votes disagree most, most votes first among equals."""
    per_scale = []
    for scale in scales_:
        coding = scale.codings["nominal" if "nominal" in scale.codings else "rating"]
        counts = grouped.counts(coding)
        per_scale.append((scale, coding, counts))
    scores = np.stack([votes.item_disagreement(c, k.values, nominal=s.name == PREFERENCE)
                       for s, k, c in per_scale])
    finite = np.isfinite(scores)
    score = np.where(finite, scores, 0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
    ranked = np.asarray(finite.any(axis=0), bool)
    n_votes = np.bincount(grouped.inverse, minlength=len(grouped.items))
    order = np.lexsort((grouped.items, -n_votes, -score))
    top = order[ranked[order]][:limit]
    return [Disputed(int(grouped.items[i]), float(score[i]), int(n_votes[i]), _summary(per_scale, i))
            for i in top]


def _summary(per_scale: list[tuple[Scale, Coding, NDArray[np.int64]]], row: int) -> str:
    parts = []
    for scale, coding, counts in per_scale:
        if scale.name == PREFERENCE:
            parts.append(" · ".join(f"{label.replace('_', ' ')} {n}"
                                    for label, n in zip(coding.labels, counts[row], strict=True) if n))
        else:
            ratings = ", ".join(label for label, n in zip(coding.labels, counts[row], strict=True)
                                for _ in range(int(n)))
            parts.append(f"{scale.name} {ratings}")
    return "; ".join(parts)
