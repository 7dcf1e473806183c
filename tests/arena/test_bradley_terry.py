"""Bradley-Terry against fits worked out by hand."""

from __future__ import annotations

import math

import pytest

from app.arena import bradley_terry as bt


def _games(i: int, j: int, wins: int, losses: int, ties: int = 0) -> list[bt.Comparison]:
    return [(i, j, 1.0)] * wins + [(i, j, 0.0)] * losses + [(i, j, 0.5)] * ties


def test_three_to_one_gives_odds_of_three() -> None:
    logs = bt.fit(2, _games(0, 1, wins=3, losses=1), prior=0)
    assert math.exp(logs[0] - logs[1]) == pytest.approx(3.0, rel=1e-6)
    assert logs.sum() == pytest.approx(0.0, abs=1e-9)


def test_a_chain_that_fits_exactly_recovers_nine_three_one() -> None:
    # p = (9, 3, 1) satisfies every MLE equation: A wins 12 = 4*9/12 + 10*9/10, B 4 = 4*3/12 + 4*3/4, ...
    games = _games(0, 1, 3, 1) + _games(1, 2, 3, 1) + _games(0, 2, 9, 1)
    logs = bt.fit(3, games, prior=0)
    assert [math.exp(v - logs[2]) for v in logs] == pytest.approx([9.0, 3.0, 1.0], rel=1e-6)


def test_a_tie_counts_as_half_a_win() -> None:
    even = bt.fit(2, _games(0, 1, 0, 0, ties=3), prior=0)
    assert even[0] == pytest.approx(even[1])
    # one win and one tie: 1.5 points to 0.5, odds of three, the same as three wins to one loss
    logs = bt.fit(2, _games(0, 1, wins=1, losses=0, ties=1), prior=0)
    assert math.exp(logs[0] - logs[1]) == pytest.approx(3.0, rel=1e-6)


def test_the_prior_keeps_an_unbeaten_config_finite() -> None:
    # prior 1: half a virtual win each way, so 2.5 points to 0.5: odds of five
    logs = bt.fit(2, _games(0, 1, wins=2, losses=0), prior=1.0)
    assert math.exp(logs[0] - logs[1]) == pytest.approx(5.0, rel=1e-6)


def test_rank_reports_elo_scores_win_rates_and_intervals_that_hold_the_score() -> None:
    games = _games(0, 1, wins=30, losses=10) + _games(1, 2, wins=5, losses=5, ties=2)
    ranking = bt.rank(3, games, prior=0, samples=100, seed=1)
    assert ranking.scores[0] - ranking.scores[1] == pytest.approx(400 * math.log10(3), rel=1e-5)
    assert sum(ranking.scores) / 3 == pytest.approx(1000.0)
    assert ranking.win_rate[0][1] == 0.75 and ranking.win_rate[1][0] == 0.25
    assert ranking.win_rate[1][2] == 0.5 and ranking.win_rate[0][2] is None
    assert ranking.games[0][1] == 40 and ranking.games[2][1] == 12
    for score, low, high in zip(ranking.scores, ranking.low, ranking.high, strict=True):
        assert low is not None and high is not None and low <= score <= high and high - low > 0


def test_no_comparisons_leaves_every_config_at_the_centre_without_intervals() -> None:
    ranking = bt.rank(2, [], samples=50)
    assert ranking.scores == [1000.0, 1000.0] and ranking.low == [None, None]


def test_a_config_cannot_play_itself() -> None:
    with pytest.raises(ValueError):
        bt.fit(2, [(1, 1, 1.0)])
