"""The pure quality policy: what a claim serves, scoring, pausing, calibration state."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from app.gold import policy
from app.gold.policy import AttemptOutcome

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_serve_kind_is_deterministic_per_annotator_and_count() -> None:
    first = [policy.serve_kind(7, n, gold_rate=0.1, repeat_rate=0.05) for n in range(500)]
    again = [policy.serve_kind(7, n, gold_rate=0.1, repeat_rate=0.05) for n in range(500)]
    other = [policy.serve_kind(8, n, gold_rate=0.1, repeat_rate=0.05) for n in range(500)]
    assert first == again
    assert first != other, "each annotator gets a sequence of their own"


@pytest.mark.parametrize(("gold_rate", "repeat_rate"), [(0.1, 0.05), (0.25, 0.0), (0.02, 0.2)])
def test_serve_kind_hits_the_rates_within_binomial_bounds(gold_rate: float, repeat_rate: float) -> None:
    draws = 20_000
    kinds = [policy.serve_kind(annotator, n, gold_rate=gold_rate, repeat_rate=repeat_rate)
             for annotator in range(1, 5) for n in range(draws // 4)]
    for kind, rate in (("gold", gold_rate), ("repeat", repeat_rate)):
        bound = 4.5 * math.sqrt(draws * rate * (1 - rate)) + 1  # 4.5 sigma: a false alarm ~1 in 150,000
        assert abs(kinds.count(kind) - draws * rate) <= bound, (kind, kinds.count(kind))


def test_zero_rates_serve_only_regular_items() -> None:
    assert {policy.serve_kind(3, n, gold_rate=0, repeat_rate=0) for n in range(1000)} == {"regular"}


def test_fallbacks_try_the_drawn_kind_first_and_never_repeat_undrawn() -> None:
    assert policy.FALLBACKS["gold"][0] == "gold" and "regular" in policy.FALLBACKS["gold"]
    assert policy.FALLBACKS["regular"] == ("regular", "gold")
    assert "repeat" not in policy.FALLBACKS["gold"] + policy.FALLBACKS["regular"]


def test_pairwise_answers_match_the_canonical_choice_only() -> None:
    assert policy.answer_correct("a", {}, "a", {})
    assert not policy.answer_correct("a", {}, "b", {})
    assert policy.answer_correct("tie", {}, "tie", {})
    assert not policy.answer_correct("tie", {}, "both_bad", {})


def test_likert_answers_must_fall_inside_every_given_range() -> None:
    ranges = {"helpfulness": [5, 7], "correctness": [1, 2]}
    assert policy.answer_correct(None, ranges, None, {"helpfulness": 5, "correctness": 2, "style": 1})
    assert not policy.answer_correct(None, ranges, None, {"helpfulness": 4, "correctness": 2})
    assert not policy.answer_correct(None, ranges, None, {"helpfulness": 6})
    assert not policy.answer_correct(None, {}, None, {"helpfulness": 6}), "no key: nothing to be right about"


def test_no_pause_before_the_minimum_even_when_every_answer_is_wrong() -> None:
    assert policy.pause_reason([False] * 4, judged=4, bar=0.7, window=10, minimum=5) is None
    reason = policy.pause_reason([False] * 5, judged=5, bar=0.7, window=10, minimum=5)
    assert reason is not None and "0%" in reason and "70%" in reason


def test_the_bar_applies_to_the_window_of_the_newest_outcomes() -> None:
    newest_first = [True] * 7 + [False] * 3 + [False] * 10  # old misses fall out of a window of 10
    assert policy.pause_reason(newest_first, judged=20, bar=0.7, window=10, minimum=5) is None
    six_of_ten = [True] * 6 + [False] * 4
    reason = policy.pause_reason(six_of_ten, judged=10, bar=0.7, window=10, minimum=5)
    assert reason is not None and "6 of 10" in reason


def test_calibration_state_passed_due_blocked() -> None:
    failed = [AttemptOutcome(T0, False), AttemptOutcome(T0 + timedelta(hours=1), False)]
    assert policy.calibration_state([], required_since=None, allowed=3) == "due"
    assert policy.calibration_state(failed, required_since=None, allowed=3) == "due"
    assert policy.calibration_state(failed, required_since=None, allowed=2) == "blocked"
    passed = [*failed, AttemptOutcome(T0, True)]
    assert policy.calibration_state(passed, required_since=None, allowed=2) == "passed"
    unfinished = [AttemptOutcome(None, None)]
    assert policy.calibration_state(unfinished, required_since=None, allowed=1) == "due"


def test_a_pass_before_a_recalibration_no_longer_counts() -> None:
    old_pass = [AttemptOutcome(T0, True)]
    assert policy.calibration_state(old_pass, required_since=T0 + timedelta(days=1), allowed=3) == "due"
    assert policy.calibration_state(old_pass, required_since=T0 - timedelta(days=1), allowed=3) == "passed"


def test_calibration_order_is_a_deterministic_permutation_per_attempt() -> None:
    items = list(range(100, 120))
    first = policy.calibration_order(items, user_id=4, number=1)
    assert sorted(first) == items
    assert first == policy.calibration_order(list(reversed(items)), user_id=4, number=1)
    assert first != policy.calibration_order(items, user_id=4, number=2)


def test_pass_mark_and_side_mapping() -> None:
    assert policy.passed(4, 5, 0.8) and not policy.passed(3, 5, 0.8)
    assert policy.passed(0, 0, 0.8)
    assert policy.to_shown("a", True) == "b" and policy.to_canonical("b", True) == "a"
    assert policy.to_shown("tie", True) == "tie" and policy.to_shown("a", False) == "a"
