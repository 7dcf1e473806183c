"""Majority vote over an item's canonical pairwise choices: which candidate won, by how much, how surely.

Pure: plain votes in, a Verdict (or None: no preference pair for this item) out.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from app.errors import Invalid

PREFERENCES = ("a", "b")
NON_PREFERENCES = ("tie", "both_bad")
DEFAULT_STRENGTH = 1  # a vote for a or b stored without a strength counts as "slightly better"


class TiePolicy(enum.StrEnum):
    """What tie and both_bad votes do.

    DROP: they are votes like any other; an item they win (or share the lead in) has no preference pair
    and is dropped, and they count in n_votes, so they lower agreement and pull the margin toward 0.
    IGNORE: they are set aside before the vote; the pair is decided by the a and b votes alone.
    """

    DROP = "drop"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Vote:
    choice: str | None  # canonical: "a", "b", "tie", "both_bad"; None (a Likert judgement) is no vote
    strength: int | None = None  # 1 slightly, 2 clearly, 3 much better


@dataclass(frozen=True)
class Verdict:
    winner: str  # "a" or "b"
    winner_votes: int
    n_votes: int
    agreement: float  # winner_votes / n_votes
    margin: float  # mean signed strength over the counted votes, in strength units (1..3)


def parse_policy(value: str) -> TiePolicy:
    try:
        return TiePolicy(value)
    except ValueError:
        allowed = ", ".join(p.value for p in TiePolicy)
        raise Invalid(f"unknown tie policy {value!r}: use one of {allowed}", field="tie_policy") from None


def counted_votes(votes: Iterable[Vote], policy: TiePolicy) -> list[Vote]:
    keep = PREFERENCES if policy is TiePolicy.IGNORE else PREFERENCES + NON_PREFERENCES
    return [vote for vote in votes if vote.choice in keep]


def majority(votes: Iterable[Vote], *, tie_policy: TiePolicy | str = TiePolicy.DROP) -> Verdict | None:
    """The item's preference, or None when no candidate has a strict plurality of the counted votes.

    None when there are no counted votes, when a and b (or any two choices) share the lead, and,
    under DROP, when tie or both_bad leads.
    """
    counted = counted_votes(votes, parse_policy(tie_policy))
    if not counted:
        return None
    ranking = Counter(vote.choice for vote in counted).most_common()
    (leader, leader_votes), runner_up = ranking[0], ranking[1:2]
    if runner_up and runner_up[0][1] == leader_votes:
        return None  # a split: no strict plurality
    if leader not in PREFERENCES:
        return None
    return Verdict(winner=str(leader), winner_votes=leader_votes, n_votes=len(counted),
                   agreement=leader_votes / len(counted), margin=signed_mean(counted, str(leader)))


def signed_mean(votes: list[Vote], winner: str) -> float:
    """Mean over votes of +strength (for the winner), -strength (for the loser), 0 (tie or both_bad)."""
    total = 0
    for vote in votes:
        strength = vote.strength if vote.strength is not None else DEFAULT_STRENGTH
        if vote.choice == winner:
            total += strength
        elif vote.choice in PREFERENCES:
            total -= strength
    return total / len(votes)
