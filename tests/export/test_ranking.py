"""Bradley-Terry over a prompt's candidates, checked against fits solved by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.export.aggregate import Counts, Vote
from app.export.ranking import Comparison, fit, implied_pairs, win_matrix


def said(*choices: str) -> Counts:
    return Counts.of(Vote(choice) for choice in choices)


def test_two_candidates_with_the_pseudo_wins_by_hand() -> None:
    # 2 votes for a, plus 0.5 pseudo-wins each way: s_a / s_b = 2.5 / 0.5 = 5 → P = 5/6, margin log 5
    (pair,) = implied_pairs([Comparison(0, 1, said("a", "a"))], 2)
    assert (pair.winner, pair.loser) == (0, 1)
    assert pair.probability == pytest.approx(5 / 6)
    assert pair.margin == pytest.approx(math.log(5))


def test_a_chain_implies_the_pair_no_item_compared() -> None:
    # x ≻ y and y ≻ z once each: the BT equations give s_x = 3 s_y and s_y = 3 s_z, so
    # x ≻ z with P = 9/10 and margin log 9 although nobody compared x and z.
    pairs = implied_pairs([Comparison(0, 1, said("a")), Comparison(1, 2, said("a"))], 3)
    found = {(p.winner, p.loser): (p.probability, p.margin) for p in pairs}
    assert set(found) == {(0, 1), (0, 2), (1, 2)}
    assert found[(0, 1)] == pytest.approx((0.75, math.log(3)))
    assert found[(1, 2)] == pytest.approx((0.75, math.log(3)))
    assert found[(0, 2)] == pytest.approx((0.9, math.log(9)))


def test_b_votes_point_the_other_way_and_a_split_implies_nothing() -> None:
    (pair,) = implied_pairs([Comparison(0, 1, said("b", "b", "a"))], 2)
    assert (pair.winner, pair.loser) == (1, 0)
    assert implied_pairs([Comparison(0, 1, said("a", "b"))], 2) == []


def test_unconnected_candidates_are_never_paired() -> None:
    pairs = implied_pairs([Comparison(0, 1, said("a")), Comparison(2, 3, said("b"))], 5)
    assert {(p.winner, p.loser) for p in pairs} == {(0, 1), (3, 2)}
    assert math.isnan(fit(win_matrix([Comparison(0, 1, said("a"))], 3, "drop"))[2])


def test_tie_policies_on_the_win_matrix() -> None:
    items = [Comparison(0, 1, said("a", "tie")), Comparison(1, 2, said("tie", "tie", "b"))]
    drop = win_matrix(items, 3, "drop")  # a shared lead with tie (first item) and a tie lead: both skipped
    assert drop.sum() == 0
    assert win_matrix(items, 3, "ignore").tolist() == [[0, 1, 0], [0, 0, 0], [0, 1, 0]]
    half = win_matrix(items, 3, "half")
    assert half.tolist() == [[0, 1.5, 0], [0.5, 0, 1.0], [0, 2.0, 0]]
    assert np.allclose(half + half.T, [[0, 2, 0], [2, 0, 3], [0, 3, 0]])


def test_a_prompt_with_only_tie_votes_implies_nothing_under_drop() -> None:
    assert implied_pairs([Comparison(0, 1, said("tie", "both_bad"))], 2) == []
    assert np.isnan(fit(np.zeros((2, 2)))).all()
