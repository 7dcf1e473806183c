from __future__ import annotations

import pytest

from app.errors import Invalid
from app.export.aggregate import TiePolicy, Vote, majority


def votes(*pairs: tuple[str | None, int | None]) -> list[Vote]:
    return [Vote(choice, strength) for choice, strength in pairs]


def test_majority_wins_with_agreement_and_signed_mean_margin() -> None:
    verdict = majority(votes(("a", 3), ("a", 1), ("b", 2)))
    assert verdict is not None
    assert verdict.winner == "a"
    assert (verdict.winner_votes, verdict.n_votes) == (2, 3)
    assert verdict.agreement == pytest.approx(2 / 3)
    assert verdict.margin == pytest.approx((3 + 1 - 2) / 3)


def test_b_can_win_and_unanimous_margin_is_the_mean_strength() -> None:
    verdict = majority(votes(("b", 2), ("b", 3)))
    assert verdict is not None and verdict.winner == "b"
    assert verdict.agreement == 1.0
    assert verdict.margin == pytest.approx(2.5)


def test_even_split_between_a_and_b_has_no_verdict() -> None:
    assert majority(votes(("a", 3), ("b", 1))) is None
    assert majority(votes(("a", 1), ("a", 1), ("b", 1), ("b", 1))) is None


def test_tie_and_both_bad_majorities_are_dropped_by_default() -> None:
    assert majority(votes(("tie", None), ("tie", None), ("a", 2))) is None
    assert majority(votes(("both_bad", None))) is None


def test_under_drop_non_preference_votes_count_toward_agreement_and_margin() -> None:
    verdict = majority(votes(("a", 2), ("a", 2), ("tie", None)))
    assert verdict is not None and verdict.winner == "a"
    assert verdict.n_votes == 3
    assert verdict.agreement == pytest.approx(2 / 3)
    assert verdict.margin == pytest.approx(4 / 3)


def test_a_shared_lead_with_tie_is_no_verdict_under_drop() -> None:
    assert majority(votes(("a", 3), ("tie", None))) is None


def test_ignore_policy_decides_on_a_and_b_votes_alone() -> None:
    verdict = majority(votes(("a", 2), ("tie", None), ("tie", None), ("both_bad", None)),
                       tie_policy=TiePolicy.IGNORE)
    assert verdict is not None and verdict.winner == "a"
    assert (verdict.n_votes, verdict.agreement, verdict.margin) == (1, 1.0, 2.0)
    assert majority(votes(("tie", None)), tie_policy="ignore") is None


def test_missing_strength_counts_as_slightly_and_no_choice_is_no_vote() -> None:
    verdict = majority(votes(("a", None), (None, None), ("a", 3)))
    assert verdict is not None
    assert verdict.n_votes == 2
    assert verdict.margin == pytest.approx(2.0)


def test_no_votes_no_verdict() -> None:
    assert majority([]) is None


def test_unknown_policy_is_invalid() -> None:
    with pytest.raises(Invalid) as error:
        majority(votes(("a", 1)), tie_policy="coinflip")
    assert error.value.field == "tie_policy"
