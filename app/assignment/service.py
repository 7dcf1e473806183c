"""Assignment: leases that hand each item to exactly k distinct annotators, never the same one twice.

Slot accounting: an item is created with open_slots = k. A claim takes a slot (open_slots -= 1); a
judgement keeps it for good; a skip or an expired lease gives it back (open_slots += 1). So at most k
leases are live-or-judged per item at any time, and the unique (item, annotator) lease row means no
annotator holds an item twice.

Lock order, everywhere: the item row first, then its leases. Claims and releases never wait for a
lock (SKIP LOCKED); submits and skips wait only for the one item they work on.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.orm import Session, joinedload

from app.accounts.models import User
from app.assignment import policy
from app.assignment.models import Lease
from app.errors import Conflict, NotFound, PermissionDenied
from app.projects.models import Item, ItemKind, Project

TIME_RAN_OUT = "this item's time ran out and it went back to the queue"


def next_open_item(project: Project, annotator: User) -> Select[Item]:
    """The project's first item with a free slot that this annotator has never leased (nor skipped)."""
    leased = select(Lease.id).where(Lease.item_id == Item.id, Lease.annotator_id == annotator.id)
    return (
        select(Item)
        .where(Item.project_id == project.id, Item.open_slots > 0, ~exists(leased))
        .order_by(Item.id)
        .limit(1)
    )


def claim_next_item(session: Session, *, project: Project, annotator: User, now: datetime) -> Lease | None:
    """The annotator's live lease in this project, or a new lease on an item that still needs votes.

    SKIP LOCKED: two annotators racing for an item's last open slot never both get it. Expired leases
    of the project are released first, so their slots can be handed out again. None: nothing left.
    """
    release_expired(session, project_id=project.id, now=now)
    live = session.scalar(
        select(Lease)
        .where(Lease.project_id == project.id, Lease.annotator_id == annotator.id,
               Lease.completed_at.is_(None), Lease.expires_at > now)
        .order_by(Lease.id)
        .limit(1)
    )
    if live is not None:
        return live  # a reload shows the same item instead of spending another slot
    item = take_slot(session, next_open_item(project, annotator))
    if item is None:
        return None
    # Only a pair has sides to swap; a Likert single is always shown as it is.
    swapped = item.kind == ItemKind.PAIR and policy.swap_sides(item.id, annotator.id)
    lease = Lease(item=item, annotator_id=annotator.id, project_id=project.id, swapped=swapped,
                  skipped=False, expires_at=now + project.lease_ttl)
    session.add(lease)
    session.flush()
    return lease


def take_slot(session: Session, candidates: Select[Item]) -> Item | None:
    """Take one open slot of the first item `candidates` yields that no one else holds locked, or None.

    One statement (UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING): the item is
    locked, re-checked and decremented in a single round trip.
    """
    picked = candidates.with_only_columns(Item.id).with_for_update(skip_locked=True).correlate(None)
    return session.scalar(
        update(Item).where(Item.id == picked.scalar_subquery()).values(open_slots=Item.open_slots - 1)
        .returning(Item)
    )


def release_expired(session: Session, *, project_id: int, now: datetime) -> int:
    """Delete the project's expired, uncompleted leases and give their slots back; returns how many.

    Never waits: an item locked by another transaction (being claimed or judged right now) is left for a
    later call. Cheap when nothing has expired (one probe of the partial index ix_leases_expiring).
    """
    expired = (Lease.project_id == project_id, Lease.completed_at.is_(None), Lease.expires_at <= now)
    items = select(Lease.item_id).where(*expired)
    locked = list(session.scalars(
        select(Item.id).where(Item.id.in_(items)).order_by(Item.id).with_for_update(skip_locked=True)
    ))
    if not locked:
        return 0
    released = Counter(session.scalars(
        delete(Lease).where(*expired, Lease.item_id.in_(locked)).returning(Lease.item_id)
    ))
    for item_id, count in released.items():
        session.execute(update(Item).where(Item.id == item_id).values(open_slots=Item.open_slots + count))
    session.flush()
    return sum(released.values())


def get_lease(session: Session, *, lease_id: int, annotator: User, project_id: int | None = None) -> Lease:
    """The annotator's lease (NotFound in another project, PermissionDenied for someone else's).

    A lease that is gone was released after it expired, so that is a Conflict, not a NotFound.
    """
    return _owned(session.get(Lease, lease_id), annotator=annotator, project_id=project_id)


def _owned(lease: Lease | None, *, annotator: User, project_id: int | None) -> Lease:
    if lease is None:
        raise Conflict(TIME_RAN_OUT)
    if project_id is not None and lease.project_id != project_id:
        raise NotFound("no such item in this project")
    if lease.annotator_id != annotator.id:
        raise PermissionDenied("this item was given to another annotator")
    return lease


def lock_lease(session: Session, *, lease_id: int, annotator: User, project_id: int | None = None) -> Lease:
    """get_lease, with the item row locked FOR UPDATE and the lease read after the lock.

    The read after the lock sees what a concurrent submit, skip or release committed while we waited, so
    two submits of one lease run one after the other and the second finds the lease completed. (Someone
    else's lease gets its item locked too before the refusal; the request then rolls back.)
    """
    session.flush()
    session.execute(select(Item.id).join(Lease, Lease.item_id == Item.id).where(Lease.id == lease_id)
                    .with_for_update(of=Item))
    fresh = session.scalar(
        select(Lease).where(Lease.id == lease_id).options(joinedload(Lease.item))
        .execution_options(populate_existing=True)
    )
    return _owned(fresh, annotator=annotator, project_id=project_id)


def complete(session: Session, *, lease: Lease, now: datetime) -> None:
    """Mark a locked lease judged: its slot stays taken and the item counts one more judgement."""
    lease.completed_at = now
    lease.item.judgement_count += 1
    session.flush()


def give_back(session: Session, *, lease: Lease, now: datetime) -> None:
    """Skip a locked lease: its slot goes back to the item; the row stays, so it is never offered again."""
    lease.completed_at = now
    lease.skipped = True
    lease.item.open_slots += 1
    session.flush()
