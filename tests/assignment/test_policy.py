from __future__ import annotations

import pytest

from app.assignment import policy


def test_swap_sides_is_deterministic() -> None:
    assert [policy.swap_sides(i, 7) for i in range(50)] == [policy.swap_sides(i, 7) for i in range(50)]


def test_swap_sides_is_about_half_overall_and_per_annotator() -> None:
    pairs = [(item, annotator) for item in range(1, 201) for annotator in range(1, 21)]
    share = sum(policy.swap_sides(i, a) for i, a in pairs) / len(pairs)
    assert 0.47 < share < 0.53
    for annotator in (1, 2, 3):
        own = sum(policy.swap_sides(i, annotator) for i in range(1, 401)) / 400
        assert 0.4 < own < 0.6, "every annotator sees both orders, not one fixed side"


def test_swap_sides_differs_between_annotators_of_one_item() -> None:
    assert len({policy.swap_sides(42, a) for a in range(1, 30)}) == 2


@pytest.mark.parametrize(("shown", "swapped", "canonical"), [
    ("a", False, "a"), ("b", False, "b"), ("a", True, "b"), ("b", True, "a"),
    ("tie", True, "tie"), ("both_bad", True, "both_bad"), ("tie", False, "tie"),
])
def test_shown_choice_maps_to_canonical_and_back(shown: str, swapped: bool, canonical: str) -> None:
    assert policy.to_canonical(shown, swapped) == canonical
    assert policy.to_shown(canonical, swapped) == shown


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown choice"):
        policy.to_canonical("left", False)


def test_shown_order_puts_candidate_b_first_when_swapped() -> None:
    assert policy.shown_order(False) == ("a", "b")
    assert policy.shown_order(True) == ("b", "a")
