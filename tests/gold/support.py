"""Shared steps of the gold tests: claim an item and judge it as a given canonical answer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.schemas import JudgementIn
from app.assignment import policy
from app.assignment import service as assignment_service
from app.db import utcnow
from app.projects.models import Item, ItemKind, ItemPurpose, Project


@dataclass(frozen=True)
class Judged:
    lease_id: int
    item_id: int
    purpose: ItemPurpose
    swapped: bool
    is_repeat: bool


def judge_next(session: Session, project: Project, annotator: User, canonical: str = "a",
               ratings: dict[str, int] | None = None) -> Judged | None:
    """Claim the annotator's next item and judge it: pairs as `canonical` (undoing the side swap),
    singles with `ratings` (every attribute 4 when not given). None: nothing left to claim."""
    lease = assignment_service.claim_next_item(session, project=project, annotator=annotator, now=utcnow())
    if lease is None:
        return None
    item = session.get(Item, lease.item_id)
    assert item is not None
    if item.kind == ItemKind.PAIR:
        form = JudgementIn(choice=policy.to_shown(canonical, lease.swapped),  # type: ignore[arg-type]
                           strength=1 if canonical in ("a", "b") else None)
    else:
        form = JudgementIn(ratings=ratings or {name: 4 for name in project.attribute_names})
    annotation_service.submit(session, lease_id=lease.id, annotator=annotator, form=form, now=utcnow(),
                              project_id=project.id)
    return Judged(lease.id, item.id, item.purpose, lease.swapped, lease.is_repeat)
