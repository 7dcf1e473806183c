"""Pure quality policy: what each claim serves, how answers are scored, when to pause, calibration state.

Choices are canonical here ("a" = candidate_a) unless a name says *shown* (what the annotator saw,
"a" = left); a swapped pair shows candidate_b on the left.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["regular", "gold", "repeat"]
CalibrationState = Literal["passed", "due", "blocked"]
EXPECTED_CHOICES = ("a", "b", "tie")
_OTHER = {"a": "b", "b": "a"}
# What to try, in order, for each draw: a repeat or gold item is served only when one is due or left;
# the regular work comes next, and gold items keep coming once the regular work has run out.
FALLBACKS: dict[Kind, tuple[Kind, ...]] = {
    "repeat": ("repeat", "regular", "gold"),
    "gold": ("gold", "regular"),
    "regular": ("regular", "gold"),
}


def unit_draw(*parts: object) -> float:
    """A deterministic number in [0, 1) for these parts: the same inputs always give the same draw."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def serve_kind(annotator_id: int, judged: int, *, gold_rate: float, repeat_rate: float) -> Kind:
    """What the annotator's next claim serves, given how many items they have judged in the project.

    Deterministic per (annotator, judged), so a reload or a retry never changes the answer, and hashed, so
    nobody can count their way to the gold items.
    """
    draw = unit_draw("serve", annotator_id, judged)
    if draw < repeat_rate:
        return "repeat"
    if draw < repeat_rate + gold_rate:
        return "gold"
    return "regular"


def choice_correct(expected: str | None, choice: str | None) -> bool:
    """A canonical choice against the expected one ("both_bad" never matches a, b or tie)."""
    return expected is not None and choice == expected


def ratings_correct(ranges: Mapping[str, Sequence[int]], ratings: Mapping[str, int]) -> bool:
    """Every attribute with a range was rated inside it (inclusive)."""
    return all(name in ratings and low <= ratings[name] <= high for name, (low, high) in ranges.items())


def answer_correct(expected_choice: str | None, ranges: Mapping[str, Sequence[int]],
                   choice: str | None, ratings: Mapping[str, int]) -> bool:
    if expected_choice is not None:
        return choice_correct(expected_choice, choice)
    return bool(ranges) and ratings_correct(ranges, ratings)


def pause_reason(recent: Sequence[bool], *, judged: int, bar: float, window: int, minimum: int) -> str | None:
    """Why an annotator should be paused, or None. `recent`: gold outcomes newest first (at least the
    last `window`), `judged`: gold items judged since the last resume. Below the bar counts only once
    `minimum` gold items were judged."""
    if judged < minimum or not recent:
        return None
    last = list(recent[:window])
    accuracy = sum(last) / len(last)
    if accuracy >= bar:
        return None
    return (f"gold accuracy {accuracy:.0%} ({sum(last)} of {len(last)} correct) over the last {len(last)} "
            f"gold items is below this project's bar of {bar:.0%}")


@dataclass(frozen=True)
class AttemptOutcome:
    finished_at: datetime | None
    passed: bool | None


def calibration_state(attempts: Sequence[AttemptOutcome], *, required_since: datetime | None,
                      allowed: int) -> CalibrationState:
    """Passed (an attempt finished since `required_since` passed), blocked (`allowed` attempts finished
    since then and failed), or due (another attempt is needed)."""
    finished = [a for a in attempts if a.finished_at is not None
                and (required_since is None or a.finished_at >= required_since)]
    if any(a.passed for a in finished):
        return "passed"
    return "blocked" if len(finished) >= allowed else "due"


def calibration_order(item_ids: Sequence[int], *, user_id: int, number: int) -> list[int]:
    """The calibration items in a deterministic order of their own for each annotator and attempt."""
    ordered = sorted(item_ids)
    random.Random(f"calibration:{user_id}:{number}").shuffle(ordered)
    return ordered


def calibration_swapped(item_id: int, *, user_id: int, number: int) -> bool:
    return unit_draw("calibration-side", item_id, user_id, number) < 0.5


def to_shown(choice: str, swapped: bool) -> str:
    """A canonical choice as the annotator saw it (and back: the mapping is its own inverse)."""
    return _OTHER.get(choice, choice) if swapped else choice


def to_canonical(shown: str, swapped: bool) -> str:
    """A choice made on the shown sides in canonical terms."""
    return to_shown(shown, swapped)


def passed(correct: int, total: int, pass_mark: float) -> bool:
    """An empty attempt (every calibration item was withdrawn meanwhile) passes: nothing was failed."""
    return total == 0 or correct / total >= pass_mark
