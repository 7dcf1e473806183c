"""Assignment: leases that hand each item to exactly k distinct annotators, never the same one twice.

Slot accounting: an item is created with open_slots = k. A claim takes a slot (open_slots -= 1); a
judgement keeps it for good; a skip or an expired lease gives it back (open_slots += 1). So at most k
leases are live-or-judged per item at any time, and the unique (item, annotator) lease row means no
annotator holds an item twice. Gold leases and repeat leases (`takes_slot` false) are extra: they never
move an item's open_slots or judgement_count.

Lock order, everywhere: the item row first, then its leases. Claims and releases never wait for a
lock (SKIP LOCKED); submits and skips wait only for the one item they work on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import ReturningUpdate, Update

from app.accounts.models import User
from app.assignment import policy
from app.assignment.models import Lease
from app.errors import Conflict, NotFound, PermissionDenied
from app.gold import service as gold_service
from app.projects.models import Item, ItemKind, ItemPurpose, Project

TIME_RAN_OUT = "this item's time ran out and it went back to the queue"
REPEAT_GAP = 5  # a repeat comes at least this many judgements after the original: not simply remembered


def next_open_item(project: Project, annotator: User) -> Select[Item]:
    """The project's first regular item with a free slot this annotator has never leased (nor skipped).

    First: the oldest; with the project's `uncertain_first`, the pair the latest reward model is least
    sure of (smallest |Δr|; unscored items after the scored ones), served by ix_items_uncertain.
    """
    return _open_items(project.id, annotator.id, uncertain_first=project.uncertain_first)


def _open_items(project_id: int | ColumnElement[int], annotator_id: int | ColumnElement[int], *,
                uncertain_first: bool) -> Select[Item]:
    leased = select(Lease.id).where(Lease.item_id == Item.id, Lease.annotator_id == annotator_id)
    order = (Item.reward_gap.asc().nulls_last(), Item.id) if uncertain_first else (Item.id,)
    return (
        select(Item)
        .where(Item.project_id == project_id, Item.open_slots > 0, Item.purpose == ItemPurpose.REGULAR,
               ~exists(leased))
        .order_by(*order)
        .limit(1)
    )


def claim_next_item(session: Session, *, project: Project, annotator: User, now: datetime) -> Lease | None:
    """The annotator's live lease in this project, or a new lease on an item that still needs votes.

    SKIP LOCKED: two annotators racing for an item's last open slot never both get it. Expired leases
    of the project are released first, so their slots can be handed out again. Gold items and repeats
    are interleaved at the project's rates (gold_service.serve_kind, deterministic per annotator and
    number of items judged). None: nothing left.
    """
    expired, live_id, judged = session.execute(  # one round trip for the three questions
        _STANDING, {"project_id": project.id, "annotator_id": annotator.id, "now": now}).one()
    if expired:
        release_expired(session, project_id=project.id, now=now)
    if live_id is not None:
        return session.get(Lease, live_id)  # a reload shows the same item instead of spending another slot
    kind = gold_service.serve_kind(project, annotator_id=annotator.id, judged=judged)
    for option in gold_service.fallbacks(kind):
        lease = _CLAIMS[option](session, project, annotator, now)
        if lease is not None:
            return lease
    return None


def _judged(project_id: int | ColumnElement[int], annotator_id: int | ColumnElement[int]) -> Select[int]:
    """The items (gold and repeats included) the annotator has judged in the project, counted."""
    return select(func.count(Lease.id)).where(
        Lease.project_id == project_id, Lease.annotator_id == annotator_id,
        Lease.completed_at.is_not(None), ~Lease.skipped)  # as in ix_leases_judged


def _expired(project_id: int | ColumnElement[int], now: datetime | ColumnElement[datetime]) -> Select[int]:
    """The project's leases whose time ran out before they were judged or skipped."""
    return select(Lease.id).where(Lease.project_id == project_id, Lease.completed_at.is_(None),
                                  Lease.expires_at <= now)


def standing_columns(project_id: ColumnElement[int], annotator_id: ColumnElement[int],
                     now: ColumnElement[datetime]) -> tuple[ColumnElement[Any], ...]:
    """claim_next_item's three questions as columns: any expired lease in the project, the annotator's
    live lease, how many items they have judged (the lean path folds them into its sign-in query)."""
    live = (select(Lease.id).where(Lease.project_id == project_id, Lease.annotator_id == annotator_id,
                                   Lease.completed_at.is_(None), Lease.expires_at > now)
            .order_by(Lease.id).limit(1).scalar_subquery())
    judged = _judged(project_id, annotator_id).scalar_subquery()
    return exists(_expired(project_id, now)), live, judged


def _standing() -> Select[Any]:
    """claim_next_item's three questions in one statement."""
    return select(*standing_columns(bindparam("project_id"), bindparam("annotator_id"), bindparam("now")))


def _claim_regular(session: Session, project: Project, annotator: User, now: datetime) -> Lease | None:
    item: Item | None = session.scalar(_TAKE_OPEN_SLOT[project.uncertain_first],
                                       {"in_project": project.id, "for_annotator": annotator.id})
    if item is None:
        return None
    # Only a pair has sides to swap; a Likert single is always shown as it is.
    swapped = item.kind == ItemKind.PAIR and policy.swap_sides(item.id, annotator.id)
    lease: Lease = session.scalars(insert(Lease).returning(Lease), [{  # no unit of work: one plain INSERT
        "item_id": item.id, "annotator_id": annotator.id, "project_id": project.id, "swapped": swapped,
        "skipped": False, "is_repeat": False, "takes_slot": True, "expires_at": now + project.lease_ttl,
    }]).one()
    set_committed_value(lease, "item", item)
    return lease


def _claim_gold(session: Session, project: Project, annotator: User, now: datetime) -> Lease | None:
    """A gold item the annotator has never leased. Gold items are shared: every annotator may get each
    once, and they take no slot (an item's k counts regular judgements only)."""
    leased = select(Lease.id).where(Lease.item_id == Item.id, Lease.annotator_id == annotator.id)
    item = session.scalar(
        select(Item).where(Item.project_id == project.id, Item.purpose == ItemPurpose.GOLD, ~exists(leased))
        .order_by(Item.id).limit(1))
    if item is None:
        return None
    swapped = item.kind == ItemKind.PAIR and policy.swap_sides(item.id, annotator.id)
    return _add_extra(session, Lease(item=item, annotator_id=annotator.id, project_id=project.id,
                                     swapped=swapped, skipped=False, takes_slot=False,
                                     expires_at=now + project.lease_ttl))


def _claim_repeat(session: Session, project: Project, annotator: User, now: datetime) -> Lease | None:
    """A regular item the annotator judged at least REPEAT_GAP judgements ago and never saw repeated,
    oldest first, shown again with the sides swapped; it takes no slot and never counts on the item."""
    original = session.execute(repeat_original(project.id, annotator.id).add_columns(Item)).first()
    if original is None:
        return None
    lease, item = original
    return _add_extra(session, Lease(item=item, annotator_id=annotator.id, project_id=project.id,
                                     swapped=item.kind == ItemKind.PAIR and not lease.swapped, skipped=False,
                                     is_repeat=True, takes_slot=False, expires_at=now + project.lease_ttl))


def repeat_original(project_id: int | ColumnElement[int],
                    annotator_id: int | ColumnElement[int]) -> Select[Any]:
    """The lease _claim_repeat repeats (joined to its item, for more columns): the annotator's oldest
    judged regular lease at least REPEAT_GAP judgements back whose item they never saw repeated."""
    own = (Lease.project_id == project_id, Lease.annotator_id == annotator_id,
           Lease.completed_at.is_not(None), ~Lease.skipped)  # as in ix_leases_judged
    cutoff = (select(Lease.id).where(*own).order_by(Lease.id.desc())
              .offset(REPEAT_GAP - 1).limit(1).scalar_subquery())
    repeat = aliased(Lease)
    # `is_repeat` bare (not IS TRUE) so the planner can use the partial index ix_leases_repeats
    repeated = select(repeat.id).where(repeat.item_id == Lease.item_id, repeat.annotator_id == annotator_id,
                                       repeat.is_repeat)
    return (select(Lease).join(Item, Item.id == Lease.item_id)
            .where(*own, Lease.is_repeat.is_(False), Lease.takes_slot.is_(True), Lease.id < cutoff,
                   Item.purpose == ItemPurpose.REGULAR, ~exists(repeated))
            .order_by(Lease.id).limit(1))


def _add_extra(session: Session, lease: Lease) -> Lease | None:
    """Insert a lease that takes no slot; None when the same annotator claimed it in another tab just now."""
    try:
        with session.begin_nested():
            session.add(lease)
            session.flush()
    except IntegrityError:
        return None
    return lease


_CLAIMS: dict[str, Callable[[Session, Project, User, datetime], Lease | None]] = {
    "regular": _claim_regular, "gold": _claim_gold, "repeat": _claim_repeat}


def take_slot(session: Session, candidates: Select[Item]) -> Item | None:
    """Take one open slot of the first item `candidates` yields that no one else holds locked, or None.

    One statement (UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING): the item is
    locked, re-checked and decremented in a single round trip.
    """
    item: Item | None = session.scalar(_take_slot_statement(candidates))
    return item


def _take_slot_statement(candidates: Select[Item]) -> ReturningUpdate[Any]:
    return _slot_update(candidates).returning(Item)


def _slot_update(candidates: Select[Item]) -> Update:
    picked = candidates.with_only_columns(Item.id).with_for_update(skip_locked=True).correlate(None)
    return update(Item).where(Item.id == picked.scalar_subquery()).values(open_slots=Item.open_slots - 1)


def take_slot_update(uncertain_first: bool) -> Update:
    """_claim_regular's slot taking without its RETURNING (the caller says which columns), bind parameters
    `in_project` and `for_annotator`."""
    return _slot_update(_open_items(bindparam("in_project"), bindparam("for_annotator"),
                                    uncertain_first=uncertain_first))


# The hot path's statements, built once (building one cost more CPU than running it), bind parameters
# given at execution (in an UPDATE, a column's name is taken for its SET value).
_STANDING = _standing()
_TAKE_OPEN_SLOT = {uncertain_first: take_slot_update(uncertain_first).returning(Item)
                   for uncertain_first in (False, True)}


def swap_expression(item_id: ColumnElement[int], annotator_id: ColumnElement[int]) -> ColumnElement[bool]:
    """policy.swap_sides in SQL: the low bit of the first byte of sha256("<item>:<annotator>")."""
    key = func.convert_to(func.concat(item_id, ":", annotator_id), "UTF8")
    return func.get_byte(func.sha256(key), 0).op("&")(1) == 1


def release_expired(session: Session, *, project_id: int, now: datetime) -> int:
    """Delete the project's expired, uncompleted leases and give their slots back; returns how many.

    Never waits: an item locked by another transaction (being claimed or judged right now) is left for a
    later call. Cheap when nothing has expired (one probe of the partial index ix_leases_expiring).
    """
    expired = _expired(project_id, now).whereclause
    assert expired is not None
    items = select(Lease.item_id).where(expired)
    locked = list(session.scalars(
        select(Item.id).where(Item.id.in_(items)).order_by(Item.id).with_for_update(skip_locked=True)
    ))
    if not locked:
        return 0
    deleted = session.execute(
        delete(Lease).where(expired, Lease.item_id.in_(locked)).returning(Lease.item_id, Lease.takes_slot)
    ).all()
    released = Counter(item_id for item_id, takes_slot in deleted if takes_slot)
    for item_id, count in released.items():
        session.execute(update(Item).where(Item.id == item_id).values(open_slots=Item.open_slots + count))
    session.flush()
    return len(deleted)


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


_LOCK_ITEM = (select(Item.id).join(Lease, Lease.item_id == Item.id).where(Lease.id == bindparam("lease_id"))
              .with_for_update(of=Item))
_LEASE_WITH_ITEM = (select(Lease).where(Lease.id == bindparam("lease_id")).options(joinedload(Lease.item))
                    .execution_options(populate_existing=True))


def lock_lease(session: Session, *, lease_id: int, annotator: User, project_id: int | None = None) -> Lease:
    """get_lease, with the item row locked FOR UPDATE and the lease read after the lock.

    The read after the lock sees what a concurrent submit, skip or release committed while we waited, so
    two submits of one lease run one after the other and the second finds the lease completed. (Someone
    else's lease gets its item locked too before the refusal; the request then rolls back.)
    """
    session.flush()
    lock_item_of(session, lease_id=lease_id)
    fresh = session.scalar(_LEASE_WITH_ITEM, {"lease_id": lease_id})
    return _owned(fresh, annotator=annotator, project_id=project_id)


def lock_item_of(session: Session, *, lease_id: int) -> bool:
    """Lock the item of a lease FOR UPDATE (waiting for its turn); False when there is no such lease."""
    return session.execute(_LOCK_ITEM, {"lease_id": lease_id}).first() is not None


def complete(session: Session, *, lease: Lease, now: datetime) -> None:
    """Mark a locked lease judged: its slot stays taken and the item counts one more judgement (a gold
    or repeat lease took no slot, so the item's counts stay as they are)."""
    session.execute(_COMPLETE, {"done_lease": lease.id, "done_at": now})
    set_committed_value(lease, "completed_at", now)  # what the statement wrote, without a reload
    if lease.takes_slot:
        set_committed_value(lease.item, "judgement_count", lease.item.judgement_count + 1)


def _complete_statement() -> Update:
    """One round trip, not two through the unit of work: the lease marked judged and, if it took a slot,
    its (locked) item counting one judgement more."""
    done = (update(Lease).where(Lease.id == bindparam("done_lease")).values(completed_at=bindparam("done_at"))
            .returning(Lease.item_id, Lease.takes_slot).cte("done"))
    return (update(Item).where(Item.id == done.c.item_id, done.c.takes_slot)
            .values(judgement_count=Item.judgement_count + 1)
            .execution_options(synchronize_session=False))  # the caller sets what it wrote


_COMPLETE = _complete_statement()


def give_back(session: Session, *, lease: Lease, now: datetime) -> None:
    """Skip a locked lease: its slot goes back to the item; the row stays, so it is never offered again."""
    lease.completed_at = now
    lease.skipped = True
    if lease.takes_slot:
        lease.item.open_slots += 1
    session.flush()
