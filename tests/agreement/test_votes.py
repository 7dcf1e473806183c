"""From judgement arrays to values on a scale, the leave-one-out consensus and time buckets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from app.agreement import votes
from app.agreement.snapshot import CHOICES, Judgements


def judgements(choices: list[str], strengths: list[int], items: list[int] | None = None) -> Judgements:
    n = len(choices)
    return Judgements(
        id=np.arange(1, n + 1, dtype=np.int32), item=np.asarray(items or [1] * n, np.int32),
        annotator=np.arange(1, n + 1, dtype=np.int32),
        choice=np.asarray([CHOICES.index(c) for c in choices], np.int8),
        strength=np.asarray(strengths, np.int8),
        swapped=np.zeros(n, bool), repeat=np.zeros(n, bool), seconds=np.full(n, np.nan), at=np.zeros(n),
        guideline=np.full(n, -1, np.int32), ratings=np.zeros((n, 0), np.int8))


def test_pairwise_codings() -> None:
    data = judgements(["a", "b", "tie", "both_bad", "a"], [3, 2, 0, 0, 0])
    assert votes.pairwise_nominal(data).index.tolist() == [0, 2, 1, 3, 0]
    signed = votes.pairwise_signed(data)
    # a = -strength, b = +strength, tie = 0, both_bad has no place; no strength recorded counts as 1
    values = [None if i < 0 else signed.values[i] for i in signed.index]
    assert values == [-3.0, 2.0, 0.0, None, -1.0]


def _slow_consensus(counts: np.ndarray, inverse: np.ndarray, index: np.ndarray) -> list[int]:
    out = []
    for row, value in zip(inverse, index, strict=True):
        if value < 0:
            out.append(-1)
            continue
        others = counts[row].copy()
        others[value] -= 1
        top = others.max()
        out.append(int(others.argmax()) if top > 0 and (others == top).sum() == 1 else -1)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_consensus_of_others_matches_leaving_each_vote_out(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size, n_items = int(rng.integers(2, 8)), int(rng.integers(1, 25))
    inverse = rng.integers(0, n_items, 150)
    index = rng.integers(-1, size, 150)
    counts = np.zeros((n_items, size), np.int64)
    np.add.at(counts, (inverse[index >= 0], index[index >= 0]), 1)
    fast = votes.consensus_of_others(counts, inverse, index)
    assert fast.tolist() == _slow_consensus(counts, inverse, index)


def test_consensus_examples() -> None:
    # one item: a, a, b → each a sees (a, b): split; b sees (a, a): a
    counts = np.array([[2, 0, 1, 0]])
    found = votes.consensus_of_others(counts, np.zeros(3, np.int64), np.array([0, 0, 2]))
    assert found.tolist() == [-1, -1, 0]


@pytest.mark.parametrize("ids", [[5, 3, 5, 9, 3, 4], [1, 10_000_000, 1, 77]])
def test_grouping_by_item_dense_or_sparse(ids: list[int]) -> None:
    data = judgements(["a"] * len(ids), [1] * len(ids), items=ids)
    grouped = votes.Grouped.of(data)
    items, inverse = np.unique(ids, return_inverse=True)
    assert grouped.items.tolist() == items.tolist() and grouped.inverse.tolist() == inverse.tolist()


def test_item_disagreement() -> None:
    counts = np.array([[3, 0], [1, 1], [1, 0]])
    # nominal: (a,a,a) no differing pair; (a,b) one of one; a single vote: undefined
    nominal = votes.item_disagreement(counts, np.array([0.0, 1.0]), nominal=True)
    assert nominal[:2].tolist() == [0.0, 1.0] and np.isnan(nominal[2])
    # interval, values 1 and 5 once each: the one pair differs by 4 → 16
    assert votes.item_disagreement(np.array([[1, 1]]), np.array([1.0, 5.0]), nominal=False).tolist() == [16.0]


def test_buckets_are_utc_days_and_monday_weeks() -> None:
    sunday = datetime(2026, 1, 11, 23, 59, tzinfo=UTC).timestamp()
    monday = datetime(2026, 1, 12, 0, 1, tzinfo=UTC).timestamp()
    days = votes.bucket_of(np.array([sunday, monday]), "day")
    assert days[1] == days[0] + 1
    weeks = votes.bucket_of(np.array([sunday, monday]), "week")
    assert weeks[1] == weeks[0] + 1
    start = datetime.fromtimestamp(votes.bucket_start(int(weeks[1]), "week"), UTC)
    assert start == datetime(2026, 1, 12, tzinfo=UTC)
    assert votes.choose_bucket(np.array([0.0, 91 * votes.DAY])) == "week"
    assert votes.choose_bucket(np.array([0.0, 30 * votes.DAY])) == "day"
