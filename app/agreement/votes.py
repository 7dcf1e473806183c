"""From judgement arrays to what the measures count: one value per judgement on a scale, per-item value
counts, the leave-one-out consensus, time buckets. Pure numpy.

Scales (docs/agreement.md):
  - pairwise, nominal: the canonical choice a / tie / b / both_bad, each its own category;
  - pairwise, signed: a = -strength, tie = 0, b = +strength (strength 1 when none was recorded), for the
    interval and ordinal measures; both_bad has no place between a and b, so it is missing there;
  - Likert: the rating 1..7 of one attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from app.agreement.snapshot import CHOICES, Judgements

Bucket = Literal["day", "week", "hour"]
DAY = 86_400.0
_SECONDS = {"hour": 3_600.0, "day": DAY, "week": 7 * DAY}
_MONDAY_SHIFT = 3 * DAY  # the Unix epoch was a Thursday: shift so that weeks start on Monday


@dataclass(frozen=True)
class Coding:
    """Each judgement's value on one scale: an index into `values`, -1 where it has none."""

    values: NDArray[np.float64]
    labels: tuple[str, ...]
    index: NDArray[np.int64]


def pairwise_nominal(judgements: Judgements) -> Coding:
    return Coding(np.arange(len(CHOICES), dtype=np.float64), CHOICES, judgements.choice.astype(np.int64))


def _signed_lookup() -> NDArray[np.int64]:
    """Index into -3..3 for each (choice code + 1, strength 0..3): one gather codes every judgement."""
    table = np.full((len(CHOICES) + 1, 4), -1, np.int64)
    for strength in range(4):
        table[CHOICES.index("a") + 1, strength] = 3 - max(strength, 1)
        table[CHOICES.index("b") + 1, strength] = 3 + max(strength, 1)
        table[CHOICES.index("tie") + 1, strength] = 3
    return table.ravel()


_SIGNED = _signed_lookup()


def pairwise_signed(judgements: Judgements) -> Coding:
    position = (judgements.choice.astype(np.int64) + 1) * 4 + judgements.strength
    values = np.arange(-3, 4, dtype=np.float64)
    return Coding(values, tuple(f"{v:+d}" for v in range(-3, 4)), _SIGNED[position])


def likert(judgements: Judgements, attribute: int) -> Coding:
    values = np.arange(1, 8, dtype=np.float64)
    index = judgements.ratings[:, attribute].astype(np.int64) - 1  # 0 (missing) becomes -1
    return Coding(values, tuple(str(v) for v in range(1, 8)), index)


@dataclass(frozen=True)
class Grouped:
    """Judgements grouped by item: `items` ascending, `inverse[r]` the position of row r's item."""

    judgements: Judgements
    items: NDArray[np.int64]
    inverse: NDArray[np.int64]

    @classmethod
    def of(cls, judgements: Judgements) -> Grouped:
        ids = judgements.item.astype(np.int64)
        low = int(ids.min()) if ids.size else 0
        span = int(ids.max()) - low + 1 if ids.size else 0
        if span > 4 * ids.size + 1024:  # sparse ids: sort them
            items, inverse = np.unique(ids, return_inverse=True)
            return cls(judgements, items, inverse.ravel().astype(np.int64))
        # A project's item ids are nearly contiguous: mark them in a dense table instead of sorting.
        present = np.zeros(span, bool)
        present[ids - low] = True
        position = np.cumsum(present) - 1
        return cls(judgements, np.flatnonzero(present) + low, position[ids - low].astype(np.int64))

    def counts(self, coding: Coding) -> NDArray[np.int64]:
        """(items, values): how many judgements of each item gave each value."""
        size = coding.values.size
        valid = coding.index >= 0
        cells = self.inverse[valid] * size + coding.index[valid]
        return np.bincount(cells, minlength=len(self.items) * size).reshape(len(self.items), size)

    def latest(self) -> NDArray[np.float64]:
        """Each item's newest judgement time: the moment its votes were last complete."""
        latest = np.full(len(self.items), -np.inf)
        np.maximum.at(latest, self.inverse, self.judgements.at)
        return latest


def consensus_of_others(counts: NDArray[np.int64], inverse: NDArray[np.int64], index: NDArray[np.int64]
                        ) -> NDArray[np.int64]:
    """For each judgement, the value most of the other annotators of its item gave (strict plurality),
    or -1 where the others are split or absent, or the judgement itself has no value.

    Worked out per item, not per judgement: from the item's top count c1 (n1 values share it, the first
    at `first`, the next at `second`) and the largest count c2 below the first top value. Leaving out a
    vote for v: if v is not a top value, the others' plurality is the top value when it is alone (n1 = 1);
    if v is the only top value, v stays ahead when c1 - 1 > c2; if v is one of two top values, the other
    one wins; with three or more top values the others stay split.
    """
    size = counts.shape[1]
    first = counts.argmax(axis=1)
    c1 = counts.max(axis=1)
    n1 = (counts == c1[:, None]).sum(axis=1)
    rest = np.where(np.arange(size) == first[:, None], -1, counts)
    second, c2 = rest.argmax(axis=1), rest.max(axis=1)
    row = inverse
    valued = index >= 0
    top = counts[row, np.maximum(index, 0)] == c1[row]
    alone, pair = n1[row] == 1, n1[row] == 2
    other_top = np.where(index == first[row], second[row], first[row])
    consensus = np.select(
        [valued & ~top & alone, valued & top & alone & (c1[row] - 1 > c2[row]), valued & top & pair],
        [first[row], index, other_top], default=-1)
    return np.asarray(consensus, np.int64)


def item_disagreement(counts: NDArray[np.int64], values: NDArray[np.float64], nominal: bool
                      ) -> NDArray[np.float64]:
    """Per item, the mean disagreement over its pairs of values (NaN below two values): the share of
    differing pairs (nominal), or the mean squared difference sum n_c n_k (v_c - v_k)^2 / (m (m - 1))
    = 2 (m S2 - S1^2) / (m (m - 1)) with S1, S2 the sums of values and squares (interval)."""
    m = counts.sum(axis=1).astype(np.float64)
    pairs = np.where(m >= 2, m * (m - 1), np.nan)
    if nominal:
        return np.asarray(1 - (counts * (counts - 1)).sum(axis=1) / pairs, np.float64)
    s1 = np.einsum("iv,v->i", counts, values)
    s2 = np.einsum("iv,v->i", counts, values**2)
    return np.asarray(2 * (m * s2 - s1**2) / pairs, np.float64)


def bucket_of(times: NDArray[np.float64], unit: Bucket) -> NDArray[np.int64]:
    """The bucket number of each time (hours, days or Monday-based weeks since the epoch, UTC)."""
    shift = _MONDAY_SHIFT if unit == "week" else 0.0
    return np.floor((times + shift) / _SECONDS[unit]).astype(np.int64)


def bucket_start(bucket: int, unit: Bucket) -> float:
    shift = _MONDAY_SHIFT if unit == "week" else 0.0
    return bucket * _SECONDS[unit] - shift


def choose_bucket(times: NDArray[np.float64], *, max_days: float = 90.0) -> Bucket:
    """Days, or weeks when the judgements span more than `max_days`."""
    if times.size == 0:
        return "day"
    return "week" if float(times.max() - times.min()) > max_days * DAY else "day"
