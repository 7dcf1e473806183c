"""Bradley-Terry ranking of generation configs from pairwise judgements. Pure numpy, no database.

P(i beats j) = p_i / (p_i + p_j). A tie counts as half a win for each side. Fitted with Hunter's (2004)
MM iteration; `prior` adds that many virtual games, split evenly, between every two configs, which keeps
a config that never won (or never lost) finite. Scores are on the Elo scale: 400 * log10(p), centred on
1000, so a 400-point gap means 10:1 odds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Comparison = tuple[int, int, float]  # (i, j, score of i: 1 win, 0.5 tie, 0 loss)
ELO_CENTRE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)


@dataclass(frozen=True)
class Ranking:
    scores: list[float]  # Elo scale, mean 1000
    low: list[float | None]  # 95% bootstrap interval of each score; None without bootstrap
    high: list[float | None]
    win_rate: list[list[float | None]]  # [i][j]: i's share of points against j; None: never met
    games: list[list[int]]


def tally(n: int, comparisons: Sequence[Comparison]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """wins[i, j]: points i took from j (ties half each); games[i, j]: games between them (symmetric)."""
    wins = np.zeros((n, n))
    games = np.zeros((n, n))
    for i, j, score in comparisons:
        if i == j:
            raise ValueError(f"a config cannot play itself ({i})")
        wins[i, j] += score
        wins[j, i] += 1.0 - score
        games[i, j] += 1
        games[j, i] += 1
    return wins, games


def fit(n: int, comparisons: Sequence[Comparison], *, prior: float = 0.5, iterations: int = 1000,
        tolerance: float = 1e-10) -> NDArray[np.float64]:
    """Log-strengths (mean 0) of the n configs. A config in no comparison gets 0 (with a prior > 0)."""
    wins, games = tally(n, comparisons)
    return _fit_tallied(wins, games, prior=prior, iterations=iterations, tolerance=tolerance)


def _fit_tallied(wins: NDArray[np.float64], games: NDArray[np.float64], *, prior: float, iterations: int,
                 tolerance: float) -> NDArray[np.float64]:
    n = wins.shape[0]
    off_diagonal = 1.0 - np.eye(n)
    wins = wins + prior / 2 * off_diagonal
    games = games + prior * off_diagonal
    total_wins = wins.sum(axis=1)
    strength = np.ones(n)
    for _ in range(iterations):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        safe = np.where(denominator > 0, denominator, 1.0)
        updated = np.where(denominator > 0, total_wins / safe, strength)
        updated = np.maximum(updated, 1e-300)
        updated /= math.exp(float(np.mean(np.log(updated))))
        converged = float(np.max(np.abs(np.log(updated) - np.log(strength)))) < tolerance
        strength = updated
        if converged:
            break
    logs = np.log(strength)
    return np.asarray(logs - logs.mean(), dtype=np.float64)


def to_elo(log_strengths: NDArray[np.float64]) -> list[float]:
    return [ELO_CENTRE + ELO_SCALE * float(v) for v in log_strengths]


def rank(n: int, comparisons: Sequence[Comparison], *, prior: float = 0.5, samples: int = 200,
         seed: int = 0) -> Ranking:
    """Scores, a percentile bootstrap over comparisons (resampled with replacement), and the win rates."""
    wins, games = tally(n, comparisons)
    scores = to_elo(_fit_tallied(wins, games, prior=prior, iterations=1000, tolerance=1e-10))
    low: list[float | None] = [None] * n
    high: list[float | None] = [None] * n
    if comparisons and samples > 0:
        rng = np.random.default_rng(seed)
        draws = np.empty((samples, n))
        for b in range(samples):
            picked = [comparisons[k] for k in rng.integers(0, len(comparisons), len(comparisons))]
            draws[b] = to_elo(fit(n, picked, prior=prior, iterations=300, tolerance=1e-8))
        low = [float(v) for v in np.percentile(draws, 2.5, axis=0)]
        high = [float(v) for v in np.percentile(draws, 97.5, axis=0)]
    rate = [[float(wins[i, j] / games[i, j]) if games[i, j] else None for j in range(n)] for i in range(n)]
    return Ranking(scores=scores, low=low, high=high, win_rate=rate,
                   games=[[int(g) for g in row] for row in games])
