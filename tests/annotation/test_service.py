from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.models import Judgement, Rating
from app.annotation.schemas import JudgementIn
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound, PermissionDenied
from app.projects.models import Item, Mode, Project
from tests.factories import make_pair_item, make_project, make_single_item, make_user


def _lease(db: Session, project: Project, annotator: User, *, swapped: bool | None = None) -> Lease:
    lease = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=utcnow())
    assert lease is not None
    if swapped is not None:
        lease.swapped = swapped
        db.flush()
    return lease


def _count(db: Session) -> int:
    return db.scalar(select(func.count(Judgement.id))) or 0


@pytest.mark.parametrize(("shown", "swapped", "canonical"), [
    ("a", False, "a"), ("b", False, "b"), ("a", True, "b"), ("b", True, "a"), ("tie", True, "tie"),
])
def test_the_shown_choice_is_stored_in_canonical_order(db: Session, shown: str, swapped: bool,
                                                       canonical: str) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    item = make_pair_item(db, project)
    lease = _lease(db, project, annotator, swapped=swapped)
    judgement = annotation_service.submit(db, lease_id=lease.id, annotator=annotator,
                                          form=JudgementIn(choice=shown, strength=3), now=utcnow())
    assert (judgement.choice, judgement.swapped) == (canonical, swapped)
    assert judgement.strength == (None if shown == "tie" else 3)
    db.refresh(item)
    db.refresh(lease)
    assert item.judgement_count == 1 and lease.completed_at is not None


def test_strength_is_required_for_a_or_b_and_a_choice_for_pairs(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    for form, field in ((JudgementIn(choice="a"), "strength"), (JudgementIn(strength=2), "choice"),
                        (JudgementIn(choice="b", strength=1, ratings={"x": 3}), "ratings")):
        with pytest.raises(Invalid) as caught:
            annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow())
        assert caught.value.field == field
    assert _count(db) == 0


def test_the_same_idempotency_key_twice_stores_one_judgement(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    form = JudgementIn(choice="tie", idempotency_key="k" * 32, flags=["broken", "unsafe", "broken"])
    first = annotation_service.record(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow())
    again = annotation_service.record(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow())
    assert first.created and not again.created
    assert again.judgement.id == first.judgement.id
    assert first.judgement.flags == ["broken", "unsafe"]
    assert _count(db) == 1


def test_a_completed_lease_submitted_again_returns_its_judgement(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    first = annotation_service.submit(db, lease_id=lease.id, annotator=annotator,
                                      form=JudgementIn(choice="a", strength=1), now=utcnow())
    again = annotation_service.record(db, lease_id=lease.id, annotator=annotator,
                                      form=JudgementIn(choice="b", strength=3), now=utcnow())
    assert not again.created and again.judgement.id == first.id and again.judgement.choice == first.choice
    assert _count(db) == 1


def test_a_unique_violation_becomes_the_stored_judgement_not_an_error(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    # A row stored behind the service's back (as a racing transaction would): the lease is not completed.
    db.add(Judgement(project_id=project.id, item_id=lease.item_id, lease_id=lease.id,
                     annotator_id=annotator.id, choice="tie", swapped=lease.swapped,
                     idempotency_key="racer-key-1", flags=[]))
    db.flush()
    result = annotation_service.record(db, lease_id=lease.id, annotator=annotator,
                                       form=JudgementIn(choice="a", strength=2), now=utcnow())
    assert not result.created and result.judgement.idempotency_key == "racer-key-1"
    assert _count(db) == 1  # the savepoint rolled back only the failed insert; the session still works


def test_an_expired_and_released_lease_is_a_conflict(db: Session) -> None:
    annotator, other = make_user(db), make_user(db)
    project = make_project(db, members=[annotator, other], overlap_k=1)
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    later = utcnow() + project.lease_ttl + timedelta(seconds=1)
    assert assignment_service.claim_next_item(db, project=project, annotator=other, now=later) is not None
    with pytest.raises(Conflict, match="time ran out"):
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator,
                                  form=JudgementIn(choice="a", strength=1), now=later)
    assert _count(db) == 0


def test_an_expired_lease_not_yet_released_is_still_accepted(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    later = utcnow() + project.lease_ttl * 2
    annotation_service.submit(db, lease_id=lease.id, annotator=annotator,
                              form=JudgementIn(choice="b", strength=1), now=later)
    assert _count(db) == 1


def test_only_the_annotator_of_the_lease_in_its_project_may_submit(db: Session) -> None:
    annotator, intruder = make_user(db), make_user(db)
    project = make_project(db, members=[annotator, intruder])
    elsewhere = make_project(db, members=[annotator])
    make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    form = JudgementIn(choice="a", strength=1)
    with pytest.raises(PermissionDenied):
        annotation_service.submit(db, lease_id=lease.id, annotator=intruder, form=form, now=utcnow())
    with pytest.raises(NotFound):
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow(),
                                  project_id=elsewhere.id)
    annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow(),
                              project_id=project.id)
    with pytest.raises(Conflict, match="already used"):
        annotation_service.submit(db, lease_id=lease.id, annotator=intruder, form=form, now=utcnow())


def test_likert_needs_every_attribute_from_1_to_7_and_stores_nothing_otherwise(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, mode=Mode.LIKERT, members=[annotator])
    make_single_item(db, project)
    lease = _lease(db, project, annotator)
    bad = [({"helpfulness": 5}, "rating_correctness"),
           ({"helpfulness": 8, "correctness": 3}, "rating_helpfulness"),
           ({"helpfulness": 0, "correctness": 3}, "rating_helpfulness"),
           ({"helpfulness": 5, "correctness": 3, "style": 2}, "rating_style")]
    for ratings, field in bad:
        with pytest.raises(Invalid) as caught:
            annotation_service.submit(db, lease_id=lease.id, annotator=annotator,
                                      form=JudgementIn(ratings=ratings), now=utcnow())
        assert caught.value.field == field
    with pytest.raises(Invalid) as caught:
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=JudgementIn(),
                                  now=utcnow())
    assert [d["field"] for d in caught.value.details] == ["rating_helpfulness", "rating_correctness"]
    assert _count(db) == 0 and db.scalar(select(func.count(Rating.id))) == 0

    judgement = annotation_service.submit(db, lease_id=lease.id, annotator=annotator, now=utcnow(),
                                          form=JudgementIn(ratings={"helpfulness": 7, "correctness": 1}))
    assert judgement.choice is None and judgement.strength is None
    stored = db.scalars(select(Rating).where(Rating.judgement_id == judgement.id).order_by(Rating.attribute))
    assert [(r.attribute, r.value) for r in stored] == [("correctness", 1), ("helpfulness", 7)]


def test_skip_returns_the_slot_and_is_not_a_judgement(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator], overlap_k=2)
    item = make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    annotation_service.skip(db, lease_id=lease.id, annotator=annotator, now=utcnow())
    annotation_service.skip(db, lease_id=lease.id, annotator=annotator, now=utcnow())  # idempotent
    db.refresh(item)
    assert (item.open_slots, item.judgement_count) == (2, 0)
    assert _count(db) == 0
    with pytest.raises(Conflict, match="skipped"):
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator,
                                  form=JudgementIn(choice="a", strength=1), now=utcnow())
    assert annotation_service.next_item(db, project=project, annotator=annotator, now=utcnow()).item is None


def test_describe_shows_the_responses_in_shown_order(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project, a="ALPHA", b="BRAVO")
    lease = _lease(db, project, annotator, swapped=True)
    shown = annotation_service.describe(db, lease=lease, project=project)
    assert [(r.side, r.text) for r in shown.responses] == [("a", "BRAVO"), ("b", "ALPHA")]
    assert shown.kind == "pair" and shown.prompt[0].content == "Say hello."
    lease.swapped = False
    assert [r.text for r in annotation_service.describe(db, lease=lease, project=project).responses] == [
        "ALPHA", "BRAVO"]


def test_the_form_schema_bounds_its_fields() -> None:
    assert JudgementIn(seconds=-5).seconds == 0
    assert JudgementIn(seconds=10**9).seconds == 86_400
    assert JudgementIn(seconds=float("nan")).seconds is None
    for bad in ({"flags": ["rude"]}, {"rationale": "x" * 5001}, {"strength": 4}, {"choice": "left"},
                {"idempotency_key": "bad key with spaces"}):
        with pytest.raises(ValidationError):
            JudgementIn.model_validate(bad)
    assert len(JudgementIn(rationale="x" * 5000).rationale) == 5000


def test_item_counts_are_untouched_by_a_rejected_submit(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    item = make_pair_item(db, project)
    lease = _lease(db, project, annotator)
    with pytest.raises(Invalid):
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=JudgementIn(),
                                  now=utcnow())
    refreshed = db.get(Item, item.id)
    assert refreshed is not None
    db.refresh(refreshed)
    db.refresh(lease)
    assert refreshed.judgement_count == 0 and lease.completed_at is None
