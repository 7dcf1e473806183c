"""Pure assignment policy: which side each candidate of a pair is shown on, and how to undo it.

Vocabulary used across prefstudio:
  - *canonical* sides are the item's own order: "a" = candidate_a, "b" = candidate_b;
  - *shown* sides are what the annotator saw: "a" = the left (first) response, "b" = the right one.
A lease with ``swapped`` shows candidate_b on the left. "tie" and "both_bad" have no side.
"""

from __future__ import annotations

import hashlib

SIDES = ("a", "b")
CHOICES = ("a", "b", "tie", "both_bad")
_OTHER_SIDE = {"a": "b", "b": "a"}


def swap_sides(item_id: int, annotator_id: int) -> bool:
    """Whether this annotator sees this pair swapped: deterministic, about half of all (item, annotator).

    A hash rather than a random draw, so the side shown can be recomputed and audited, and so a position
    bias of the annotator cannot line up with the order the items were created in. SHA-256, because
    Postgres has it built in: assignment_service.swap_expression is the same test in SQL, so a claim can
    insert its lease in the statement that takes the slot.
    """
    return hashlib.sha256(f"{item_id}:{annotator_id}".encode()).digest()[0] & 1 == 1


def to_canonical(shown: str, swapped: bool) -> str:
    """The canonical choice for a choice made on the shown sides."""
    if shown not in CHOICES:
        raise ValueError(f"unknown choice {shown!r}")
    return _OTHER_SIDE.get(shown, shown) if swapped else shown


def to_shown(canonical: str, swapped: bool) -> str:
    """The choice as the annotator saw it, for a canonical choice (the inverse of to_canonical)."""
    return to_canonical(canonical, swapped)


def shown_order(swapped: bool) -> tuple[str, str]:
    """The canonical sides in shown order (left first): ("a", "b"), or ("b", "a") when swapped."""
    return ("b", "a") if swapped else ("a", "b")
