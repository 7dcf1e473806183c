from __future__ import annotations

import numpy as np
import pytest

from app.errors import Invalid
from app.export.aggregate import (
    CHOICES,
    Counts,
    Labels,
    TiePolicy,
    Vote,
    dawid_skene,
    ds_verdict,
    item_agreement,
    item_posteriors,
    majority,
)


def votes(*pairs: tuple[str | None, int | None]) -> list[Vote]:
    return [Vote(choice, strength) for choice, strength in pairs]


def test_majority_wins_with_agreement_and_signed_mean_margin() -> None:
    verdict = majority(votes(("a", 3), ("a", 1), ("b", 2)))
    assert verdict is not None
    assert verdict.winner == "a"
    assert verdict.n_votes == 3
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


def test_half_policy_splits_a_tie_between_a_and_b() -> None:
    # a(2), tie: a weighs 1.5, b 0.5 over 2 counted votes → agreement 0.75; the tie adds 0 to the margin
    verdict = majority(votes(("a", 2), ("tie", None)), tie_policy=TiePolicy.HALF)
    assert verdict is not None and verdict.winner == "a"
    assert (verdict.n_votes, verdict.agreement, verdict.margin) == (2, 0.75, 1.0)
    assert majority(votes(("tie", None), ("both_bad", None)), tie_policy="half") is None


def test_item_agreement_is_the_share_of_the_most_common_choice() -> None:
    assert item_agreement(votes(("a", 1), ("a", 2), ("tie", None), ("b", 1))) == 0.5
    assert item_agreement(votes(("both_bad", None))) == 1.0
    assert item_agreement(votes((None, None))) is None


def test_dawid_skene_e_step_by_hand() -> None:
    # prior (1/2, 1/2); the annotator says "a" 90% of the time when a is right, 20% when b is:
    # P(a | "a") = 0.5 * 0.9 / (0.5 * 0.9 + 0.5 * 0.2) = 0.45 / 0.55
    confusion = np.array([[[0.9, 0.1, 0.0, 0.0], [0.2, 0.8, 0.0, 0.0]]]) + 1e-300
    labels = Labels(np.array([0, 1]), np.array([0, 0]), np.array([0, 1]))
    post = item_posteriors(labels, np.array([0.5, 0.5]), confusion, 2)
    assert post[0] == pytest.approx([0.45 / 0.55, 0.10 / 0.55])
    assert post[1] == pytest.approx([0.05 / 0.45, 0.40 / 0.45])


def reliable_and_spammer() -> Labels:
    """Annotators 1 and 2 always give the truth (a, b alternating); 3 always says "a". On two more items
    only 1 and 3 vote, 1 for b and 3 for a: a 1-1 split, which majority cannot decide."""
    items, people, choices = [], [], []
    for item, truth in enumerate("abababab"):
        for person, choice in ((1, truth), (2, truth), (3, "a")):
            items.append(item)
            people.append(person)
            choices.append(choice)
    for item in (10, 11):
        items += [item, item]
        people += [1, 3]
        choices += ["b", "a"]
    return Labels.of(items, people, choices)


def test_dawid_skene_trusts_the_reliable_annotator_where_majority_splits() -> None:
    fit = dawid_skene(reliable_and_spammer(), tie_policy="ignore")
    assert fit.classes == ("a", "b")
    assert np.argmax(fit.items, axis=1).tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 1, 1]
    assert fit.items[-1, 1] > 0.95
    spammer = fit.confusion[2]  # P(label | truth): says "a" whatever the truth
    assert spammer[1, 0] > 0.7 and fit.confusion[0][1, 1] > 0.9
    assert majority(votes(("b", 1), ("a", 1)), tie_policy="ignore") is None


def test_dawid_skene_classes_follow_the_tie_policy() -> None:
    labels = Labels.of([1, 1, 2, 2], [5, 6, 5, 6], ["tie", "tie", "a", "a"])
    drop = dawid_skene(labels)
    assert drop.classes == CHOICES and np.argmax(drop.items[0]) == 2  # the truth can be a tie
    ties = Counts.of(votes(("tie", None), ("tie", None)))
    assert ds_verdict(ties, drop.items[0], drop.classes, TiePolicy.DROP) is None
    half = dawid_skene(labels, tie_policy="half")
    assert half.classes == ("a", "b") and half.items.shape == (2, 2)
    verdict = ds_verdict(Counts(a=2, strength_a=4), drop.items[1], drop.classes, TiePolicy.DROP)
    assert verdict is not None and verdict.winner == "a"
    assert (verdict.n_votes, verdict.agreement, verdict.margin) == (2, 1.0, 2.0)
    assert verdict.confidence == pytest.approx(float(drop.items[1, 0]))


def test_counts_give_the_same_verdicts_as_the_votes() -> None:
    cast = votes(("a", 3), ("a", None), ("b", 2), ("tie", None))
    counts = Counts.of(cast)
    assert counts == Counts(a=2, b=1, tie=1, both_bad=0, strength_a=4, strength_b=2)
    for policy in TiePolicy:
        assert majority(counts, tie_policy=policy) == majority(cast, tie_policy=policy)
    assert majority(Counts(a=2, both_bad=2, strength_a=2)) is None  # both_bad shares the lead
