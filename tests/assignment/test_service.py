from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Integer, column, func, select, values
from sqlalchemy.orm import Session

from app.assignment import policy
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.db import utcnow
from app.projects.models import Item, Mode
from tests.factories import make_pair_item, make_project, make_single_item, make_user


def _slots(db: Session, item: Item) -> int:
    db.refresh(item)
    return item.open_slots


def test_claim_takes_one_slot_and_a_reload_returns_the_same_lease(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, overlap_k=2, members=[annotator])
    item = make_pair_item(db, project)
    now = utcnow()
    first = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=now)
    again = assignment_service.claim_next_item(db, project=project, annotator=annotator,
                                               now=now + timedelta(minutes=5))
    assert first is not None and again is not None
    assert again.id == first.id
    assert first.item_id == item.id and first.project_id == project.id
    assert first.expires_at == now + project.lease_ttl
    assert first.swapped == policy.swap_sides(item.id, annotator.id)
    assert _slots(db, item) == 1


def test_items_are_handed_out_in_id_order_to_k_distinct_annotators(db: Session) -> None:
    users = [make_user(db) for _ in range(3)]
    project = make_project(db, overlap_k=2, members=users)
    first, second = make_pair_item(db, project), make_pair_item(db, project)
    now = utcnow()
    got = []
    for user in users:
        lease = assignment_service.claim_next_item(db, project=project, annotator=user, now=now)
        assert lease is not None
        got.append(lease.item_id)
    assert got == [first.id, first.id, second.id]
    assert (_slots(db, first), _slots(db, second)) == (0, 1)


def test_nobody_gets_the_same_item_twice(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, overlap_k=3, members=[annotator])
    item = make_pair_item(db, project)
    now = utcnow()
    lease = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=now)
    assert lease is not None
    locked = assignment_service.lock_lease(db, lease_id=lease.id, annotator=annotator)
    assignment_service.complete(db, lease=locked, now=now)
    assert assignment_service.claim_next_item(db, project=project, annotator=annotator, now=now) is None
    assert _slots(db, item) == 2


def test_nothing_left_is_none(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    assert assignment_service.claim_next_item(db, project=project, annotator=annotator, now=utcnow()) is None


def test_a_live_lease_in_another_project_is_not_returned(db: Session) -> None:
    annotator = make_user(db)
    one, two = make_project(db, members=[annotator]), make_project(db, members=[annotator])
    make_pair_item(db, one)
    item_two = make_pair_item(db, two)
    now = utcnow()
    assert assignment_service.claim_next_item(db, project=one, annotator=annotator, now=now) is not None
    lease = assignment_service.claim_next_item(db, project=two, annotator=annotator, now=now)
    assert lease is not None and lease.item_id == item_two.id


def test_an_expired_lease_gives_its_slot_back(db: Session) -> None:
    slow, other = make_user(db), make_user(db)
    project = make_project(db, overlap_k=1, members=[slow, other], lease_minutes=10)
    item = make_pair_item(db, project)
    now = utcnow()
    lease = assignment_service.claim_next_item(db, project=project, annotator=slow, now=now)
    assert lease is not None
    assert assignment_service.claim_next_item(db, project=project, annotator=other, now=now) is None

    later = now + timedelta(minutes=11)
    taken = assignment_service.claim_next_item(db, project=project, annotator=other, now=later)
    assert taken is not None and taken.item_id == item.id
    assert db.scalar(select(func.count(Lease.id)).where(Lease.annotator_id == slow.id)) == 0
    assert _slots(db, item) == 0


def test_release_expired_counts_only_expired_uncompleted_leases(db: Session) -> None:
    users = [make_user(db) for _ in range(3)]
    project = make_project(db, overlap_k=3, members=users, lease_minutes=10)
    item = make_pair_item(db, project)
    now = utcnow()
    leases = [assignment_service.claim_next_item(db, project=project, annotator=u, now=now) for u in users]
    assert all(lease is not None for lease in leases)
    done = assignment_service.lock_lease(db, lease_id=leases[0].id, annotator=users[0])  # type: ignore[union-attr]
    assignment_service.complete(db, lease=done, now=now)
    assert assignment_service.release_expired(db, project_id=project.id, now=now + timedelta(minutes=9)) == 0
    assert assignment_service.release_expired(db, project_id=project.id, now=now + timedelta(minutes=10)) == 2
    assert assignment_service.release_expired(db, project_id=project.id, now=now + timedelta(minutes=10)) == 0
    assert _slots(db, item) == 2


def test_a_skipped_item_goes_to_someone_else_and_never_back(db: Session) -> None:
    skipper, other = make_user(db), make_user(db)
    project = make_project(db, overlap_k=1, members=[skipper, other])
    item = make_pair_item(db, project)
    now = utcnow()
    lease = assignment_service.claim_next_item(db, project=project, annotator=skipper, now=now)
    assert lease is not None
    locked = assignment_service.lock_lease(db, lease_id=lease.id, annotator=skipper)
    assignment_service.give_back(db, lease=locked, now=now)
    assert _slots(db, item) == 1
    assert assignment_service.claim_next_item(db, project=project, annotator=skipper, now=now) is None
    taken = assignment_service.claim_next_item(db, project=project, annotator=other, now=now)
    assert taken is not None and taken.item_id == item.id
    db.refresh(item)
    assert item.judgement_count == 0


def test_likert_singles_are_never_swapped(db: Session) -> None:
    users = [make_user(db) for _ in range(8)]
    project = make_project(db, mode=Mode.LIKERT, overlap_k=8, members=users)
    make_single_item(db, project)
    now = utcnow()
    leases = [assignment_service.claim_next_item(db, project=project, annotator=u, now=now) for u in users]
    assert [lease.swapped for lease in leases if lease is not None] == [False] * 8


def test_swap_expression_is_swap_sides_in_sql(db: Session) -> None:
    pairs = [(item, annotator) for item in (1, 7, 42, 999, 123456, 2**31 - 1) for annotator in range(1, 40)]
    rows = values(column("item", Integer), column("annotator", Integer), name="pairs").data(pairs)
    got = db.execute(select(rows.c.item, rows.c.annotator,
                            assignment_service.swap_expression(rows.c.item, rows.c.annotator))).all()
    assert {(i, a): swapped for i, a, swapped in got} == {(i, a): policy.swap_sides(i, a) for i, a in pairs}
