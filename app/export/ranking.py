"""Bradley-Terry over one prompt's candidates: strengths fitted to the pairwise votes, and every pair
they imply, with the fitted probability and its logit as the margin.

Pure numpy. A prompt has at most a few dozen candidates, so the fit is a small dense MM iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.export.aggregate import Counts, TiePolicy, parse_policy

PRIOR = 0.5  # pseudo-wins each way on every compared pair: a unanimous pair gets a finite strength
MAX_ITERATIONS = 10_000
TOLERANCE = 1e-12
MIN_GAP = 1e-9  # fitted strengths closer than this are a tie: no pair


@dataclass(frozen=True)
class Comparison:
    """One item of the prompt: candidates `a` and `b` (indices into the prompt's candidates) and its votes."""

    a: int
    b: int
    votes: Counts


@dataclass(frozen=True)
class ImpliedPair:
    winner: int
    loser: int
    probability: float  # fitted P(winner ≻ loser) = sigmoid(θ_winner - θ_loser), > 0.5
    margin: float  # θ_winner - θ_loser, in logits


def win_matrix(comparisons: Sequence[Comparison], n: int, policy: TiePolicy | str) -> NDArray[np.float64]:
    """wins[i, j]: votes for i over j. Under DROP an item that tie or both_bad leads (or shares the lead
    of) counts not at all, and other ties are left out; under IGNORE ties are left out; under HALF each
    tie or both_bad vote is half a win each way."""
    rule = parse_policy(policy)
    wins = np.zeros((n, n))
    for item in comparisons:
        c = item.votes
        if rule is TiePolicy.DROP and max(c.tie, c.both_bad) >= max(c.a, c.b, 1):
            continue
        wins[item.a, item.b] += c.weight("a", rule)
        wins[item.b, item.a] += c.weight("b", rule)
    return wins


def fit(wins: NDArray[np.float64], *, prior: float = PRIOR) -> NDArray[np.float64]:
    """Log-strengths θ (mean 0 within each connected group; NaN for a candidate never compared).

    Hunter's (2004) MM updates for the maximum-likelihood Bradley-Terry model, with `prior` pseudo-wins
    added both ways to every pair that was compared at least once.
    """
    compared = (wins + wins.T) > 0
    w = wins + prior * compared
    games = w + w.T
    total = w.sum(axis=1)
    seen = total > 0
    if not seen.any():
        return np.full(len(total), np.nan)
    s = np.where(seen, 1.0, 0.0)
    for _ in range(MAX_ITERATIONS):
        denom = (games / np.maximum(s[:, None] + s[None, :], 1e-300)).sum(axis=1)
        new = np.where(seen, total / np.maximum(denom, 1e-300), 0.0)
        new[seen] /= np.exp(np.log(new[seen]).mean())
        if np.abs(new - s).max(initial=0.0) < TOLERANCE:
            s = new
            break
        s = new
    theta = np.full(len(s), np.nan)
    theta[seen] = np.log(s[seen])
    for group in components(compared):
        theta[group] -= theta[group].mean()
    return theta


def components(adjacent: NDArray[np.bool_]) -> list[NDArray[np.int64]]:
    """Connected groups of candidates with at least one comparison, each ascending."""
    n = len(adjacent)
    label = np.full(n, -1)
    groups: list[NDArray[np.int64]] = []
    for start in range(n):
        if label[start] >= 0 or not adjacent[start].any():
            continue
        stack, members = [start], []
        label[start] = len(groups)
        while stack:
            node = stack.pop()
            members.append(node)
            for other in np.flatnonzero(adjacent[node]):
                if label[other] < 0:
                    label[other] = len(groups)
                    stack.append(int(other))
        groups.append(np.asarray(sorted(members), np.int64))
    return groups


def implied_pairs(comparisons: Sequence[Comparison], n: int, *,
                  tie_policy: TiePolicy | str = TiePolicy.DROP) -> list[ImpliedPair]:
    """Every pair of candidates connected through the prompt's comparisons whose fitted strengths differ,
    stronger first; in order of (first index, second index)."""
    wins = win_matrix(comparisons, n, tie_policy)
    theta = fit(wins)
    pairs = []
    for group in components((wins + wins.T) > 0):
        for x, i in enumerate(group):
            for j in group[x + 1:]:
                gap = float(theta[i] - theta[j])
                if abs(gap) < MIN_GAP:
                    continue
                winner, loser = (int(i), int(j)) if gap > 0 else (int(j), int(i))
                pairs.append(ImpliedPair(winner, loser, float(1 / (1 + np.exp(-abs(gap)))), abs(gap)))
    return pairs
