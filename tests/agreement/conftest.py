"""A small pairwise project with known votes, times, a gold item and repeats (the agreement tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.annotation.models import Judgement, Rating
from app.assignment.models import Lease
from app.projects.models import Item, ItemPurpose, Project
from tests.factories import make_guideline_version, make_judgement, make_pair_item, make_project
from tests.factories import make_user_without_password as make_user

MONDAY = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TUESDAY = MONDAY + timedelta(days=1)
XSS = "<script>alert(1)</script>"

# (choice, strength, swapped, seconds, day) per annotator u1, u2, u3; None: no judgement
VOTES: dict[str, list[tuple[str, int | None, bool, float | None, datetime] | None]] = {
    "i1": [("a", 2, False, 2.0, MONDAY), ("a", 1, False, 12.0, MONDAY), ("a", 3, False, 20.0, MONDAY)],
    "i2": [("a", 1, True, 10.0, MONDAY), ("b", 2, False, 5.0, MONDAY), ("tie", None, False, 1.0, MONDAY)],
    "i3": [("b", 1, False, 20.0, TUESDAY), ("b", 3, True, 40.0, TUESDAY),
           ("both_bad", None, False, 30.0, TUESDAY)],
    "i4": [("a", 1, False, 30.0, TUESDAY), ("a", 2, False, None, TUESDAY), None],
    "gold": [("a", 1, False, 9.0, MONDAY), ("b", 1, False, 9.0, MONDAY), ("b", 1, False, 9.0, MONDAY)],
}
# codes a=0, tie=1, b=2, both_bad=3 of the regular items' votes: what agreement must measure
NOMINAL = [[0, 0, 0], [0, 2, 1], [2, 2, 3], [0, 0, None]]
SIGNED = [[-2, -1, -3], [-1, 2, 0], [1, 3, None], [-1, -2, None]]  # a = -strength, b = +strength


@dataclass
class Voted:
    project: Project
    annotators: list[User]
    researcher: User
    items: dict[str, Item]
    judgements: dict[tuple[str, int], Judgement]
    version_id: int


def add_repeat(db: Session, item: Item, annotator: User, choice: str | None, *, at: datetime,
               ratings: dict[str, int] | None = None) -> Judgement:
    """A repeat judgement (and its repeat lease): the item shown again to an annotator who judged it."""
    lease = Lease(item_id=item.id, annotator_id=annotator.id, project_id=item.project_id, swapped=True,
                  is_repeat=True, expires_at=at, completed_at=at)
    db.add(lease)
    db.flush()
    judgement = Judgement(project_id=item.project_id, item_id=item.id, lease_id=lease.id,
                          annotator_id=annotator.id, choice=choice,
                          strength=1 if choice in ("a", "b") else None, swapped=True, flags=[], seconds=4.0,
                          idempotency_key=uuid.uuid4().hex, is_repeat=True, created_at=at)
    db.add(judgement)
    db.flush()
    for attribute, value in (ratings or {}).items():
        db.add(Rating(judgement_id=judgement.id, attribute=attribute, value=value))
    db.flush()
    return judgement


@pytest.fixture
def voted(db: Session) -> Voted:
    annotators = [make_user(db, Role.ANNOTATOR) for _ in range(3)]
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, overlap_k=3, members=[*annotators, researcher])
    items = {name: make_pair_item(db, project, text=f"Question {name}?", a=f"{name} A", b=f"{name} B")
             for name in VOTES}
    items["gold"].purpose = ItemPurpose.GOLD
    judgements = {}
    for name, row in VOTES.items():
        for index, vote in enumerate(row):
            if vote is None:
                continue
            choice, strength, swapped, seconds, at = vote
            judgement = make_judgement(db, items[name], annotators[index], choice, strength, swapped=swapped,
                                       seconds=seconds)
            judgement.created_at = at
            judgements[name, index] = judgement
    judgements["i2", 2].flags = ["refusal"]
    judgements["i2", 2].rationale = XSS
    version = make_guideline_version(db, project, make_user(db, Role.ADMIN))
    for name in ("i1", "i2"):
        for index in range(3):
            judgements[name, index].guideline_version_id = version.id
    add_repeat(db, items["i2"], annotators[0], "a", at=TUESDAY)  # the same answer again
    add_repeat(db, items["i1"], annotators[1], "b", at=TUESDAY)  # a different answer
    add_repeat(db, items["gold"], annotators[2], "b", at=TUESDAY)  # on a gold item: not counted
    db.flush()
    return Voted(project, annotators, researcher, items, judgements, version.id)
