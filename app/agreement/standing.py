"""Per-annotator quality measures from judgement arrays, pure numpy: agreement with the leave-one-out
consensus (and Cohen's kappa against it), position bias, time on task, self-consistency on repeats.

Gold accuracy is not measured here: it comes from the gold domain and joins the table as an extra column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.agreement import metrics
from app.agreement.snapshot import CHOICES, Judgements
from app.agreement.votes import Coding, Grouped, consensus_of_others

FAST_SECONDS = 3.0
_A, _B = CHOICES.index("a"), CHOICES.index("b")


@dataclass(frozen=True)
class Standing:
    annotator_id: int
    judgements: int  # counted judgements: regular items, no repeats, within the filters
    agreement: float | None  # share of values equal to the consensus of the item's other annotators
    kappa: float | None  # Cohen's kappa of the annotator against that consensus
    left_share: float | None  # pairwise: share of a/b choices that picked the response shown on the left
    left_p: float | None  # two-sided exact binomial test of left_share against 1/2
    median_seconds: float | None
    fast_share: float | None  # share of timed judgements faster than the threshold
    repeats: int  # repeat judgements matched with the annotator's original judgement of the item
    self_consistency: float | None  # share of repeats that gave the original answer again


def _shares(hits: NDArray[np.float64], totals: NDArray[np.float64]) -> list[float | None]:
    return [float(h / t) if t > 0 else None for h, t in zip(hits, totals, strict=True)]


def _consensus(grouped: Grouped, codings: list[Coding], who: NDArray[np.int64], n: int
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Agreeing values, values with a consensus, and (n, V, V) confusion tables, pooled over codings."""
    size = codings[0].values.size if codings else 1
    agree, total = np.zeros(n), np.zeros(n)
    tables = np.zeros(n * size * size, np.int64)
    for coding in codings:
        consensus = consensus_of_others(grouped.counts(coding), grouped.inverse, coding.index)
        has = consensus >= 0
        agree += np.bincount(who[has], weights=coding.index[has] == consensus[has], minlength=n)
        total += np.bincount(who[has], minlength=n)
        cells = (who[has] * size + coding.index[has]) * size + consensus[has]
        tables += np.bincount(cells, minlength=n * size * size)
    return agree, total, tables.reshape(n, size, size)


def _timing(seconds: NDArray[np.float64], who: NDArray[np.int64], n: int, fast: float
            ) -> tuple[list[float | None], list[float | None]]:
    """Per annotator: the median seconds, and the share of timed judgements under `fast` seconds."""
    timed = ~np.isnan(seconds)
    owner, secs = who[timed], seconds[timed]
    counts = np.bincount(owner, minlength=n)
    quick = np.bincount(owner, weights=(secs < fast).astype(np.float64), minlength=n).astype(np.float64)
    fast_share = _shares(quick, counts.astype(np.float64))
    if secs.size == 0:
        return [None] * n, fast_share
    # One sort by annotator, then seconds: seconds are clamped to [0, 86400], so owner * 1e6 + seconds orders
    # both at once (a float sort is several times faster than lexsort), and subtracting gives them back.
    ordered = np.sort(owner * 1e6 + secs) - np.repeat(np.arange(n) * 1e6, counts)
    starts = np.cumsum(counts) - counts
    low = np.minimum(starts + np.maximum(counts - 1, 0) // 2, secs.size - 1)
    high = np.minimum(starts + counts // 2, secs.size - 1)
    middle = (ordered[low] + ordered[high]) / 2
    return [float(m) if c else None for m, c in zip(middle, counts, strict=True)], fast_share


def _self_consistency(repeats: Judgements, originals: Judgements, who: NDArray[np.int64], n: int,
                      pairwise: bool) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per annotator: repeats matched with an original, and the sum of their agreement with it."""
    keys = originals.item.astype(np.int64) << 32 | originals.annotator.astype(np.int64)
    order = np.argsort(keys)
    wanted = repeats.item.astype(np.int64) << 32 | repeats.annotator.astype(np.int64)
    position = np.minimum(np.searchsorted(keys[order], wanted), max(len(keys) - 1, 0))
    matched = keys[order][position] == wanted if len(keys) else np.zeros(len(wanted), bool)
    original = order[position[matched]]
    if pairwise:
        same = (repeats.choice[matched] == originals.choice[original]).astype(np.float64)
    else:
        mine, theirs = repeats.ratings[matched], originals.ratings[original]
        both = (mine > 0) & (theirs > 0)
        same = ((mine == theirs) & both).sum(axis=1) / np.maximum(both.sum(axis=1), 1)
    owner = who[matched]
    return (np.bincount(owner, minlength=n).astype(np.float64),
            np.bincount(owner, weights=same, minlength=n).astype(np.float64))


def standings(grouped: Grouped, codings: list[Coding], *, repeats: Judgements, originals: Judgements,
              pairwise: bool, fast_seconds: float = FAST_SECONDS) -> list[Standing]:
    """One Standing per annotator who has counted judgements or repeats, by annotator id.

    `grouped`: the counted judgements; `codings`: their values (pooled: every Likert attribute counts);
    `repeats`: the repeat judgements to check; `originals`: every non-repeat judgement to check them against.
    """
    counted = grouped.judgements
    annotators = np.union1d(counted.annotator, repeats.annotator).astype(np.int64)
    n = annotators.size
    who = np.searchsorted(annotators, counted.annotator)
    agree, total, tables = _consensus(grouped, codings, who, n)
    kappas = metrics.kappa_from_confusion(tables, None if pairwise else "quadratic")
    medians, fast = _timing(counted.seconds, who, n, fast_seconds)
    matched, same = _self_consistency(repeats, originals, np.searchsorted(annotators, repeats.annotator),
                                      n, pairwise)
    sided = np.isin(counted.choice, (_A, _B)) if pairwise else np.zeros(len(counted), bool)
    left = (counted.choice == _A) != counted.swapped
    lefts = np.bincount(who[sided], weights=left[sided], minlength=n)
    sides = np.bincount(who[sided], minlength=n)
    n_counted = np.bincount(who, minlength=n)
    return [
        Standing(annotator_id=int(annotators[i]), judgements=int(n_counted[i]),
                 agreement=float(agree[i] / total[i]) if total[i] else None,
                 kappa=float(kappas[i]) if total[i] and np.isfinite(kappas[i]) else None,
                 left_share=float(lefts[i] / sides[i]) if sides[i] else None,
                 left_p=metrics.binomial_p_half(int(lefts[i]), int(sides[i])) if sides[i] else None,
                 median_seconds=medians[i], fast_share=fast[i], repeats=int(matched[i]),
                 self_consistency=float(same[i] / matched[i]) if matched[i] else None)
        for i in range(n)
    ]
