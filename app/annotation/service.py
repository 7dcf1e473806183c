"""Annotation: judgements and Likert ratings - submitting (idempotently), skipping, what annotators see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.models import User
from app.annotation.models import Choice, Judgement, Rating
from app.annotation.schemas import (
    Attribute,
    ItemOut,
    JudgementIn,
    Message,
    ShownResponse,
    new_idempotency_key,
)
from app.assignment import policy
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.errors import Conflict, Invalid, NotFound, PermissionDenied
from app.gold import service as gold_service
from app.guidelines import service as guidelines_service
from app.guidelines.models import GuidelineVersion
from app.projects.models import Candidate, Item, ItemKind, ItemPurpose, Project, Prompt

LIKERT_MIN, LIKERT_MAX = 1, 7
LIKERT_TOLERANCE = 1  # a Likert repeat within one point of the original on every attribute is consistent


@dataclass(frozen=True)
class Submission:
    judgement: Judgement
    created: bool  # False: an idempotent repeat that returned the stored judgement


@dataclass(frozen=True)
class Readiness:
    """Whether the annotator may take an item now: nothing in the way, new guidelines to acknowledge
    first, or a gate (paused, calibration due or failed)."""

    pending: GuidelineVersion | None = None
    stop: gold_service.Gate | None = None


@dataclass(frozen=True)
class Workspace:
    item: ItemOut | None  # None: nothing left to annotate
    done: int  # judgements this annotator has made in the project


def submit(session: Session, *, lease_id: int, annotator: User, form: JudgementIn, now: datetime,
           project_id: int | None = None) -> Judgement:
    """Store the annotator's judgement on a lease; see record()."""
    return record(session, lease_id=lease_id, annotator=annotator, form=form, now=now,
                  project_id=project_id).judgement


def record(session: Session, *, lease_id: int, annotator: User, form: JudgementIn, now: datetime,
           project_id: int | None = None) -> Submission:
    """Store a judgement, mark its lease completed and count it on the item.

    Idempotent: a repeated idempotency key, or a second submit of a completed lease, returns the stored
    judgement. The item row is locked (assignment_service.lock_lease), so concurrent submits of one lease
    queue up; a unique key taken (the key used before, on another lease) is turned into the stored
    judgement too. The key is looked up only on those paths, so a first submit costs no extra query.
    Raises Conflict when the lease expired and was released, Invalid for a malformed judgement.
    """
    try:
        lease = assignment_service.lock_lease(session, lease_id=lease_id, annotator=annotator,
                                              project_id=project_id)
    except (Conflict, NotFound, PermissionDenied):
        repeat = _by_key(session, form.idempotency_key, annotator)  # a known key answers first
        if repeat is None:
            raise
        return Submission(repeat, created=False)
    if lease.completed_at is not None:
        return Submission(_by_key(session, form.idempotency_key, annotator) or _judgement_of(session, lease),
                          created=False)
    project = session.get(Project, lease.project_id)
    assert project is not None  # the lease's foreign key
    judgement = _insert(session, lease, project, form)
    if judgement is None:  # a unique key was taken meanwhile: the key reused, or the item judged already
        stored = _by_key(session, form.idempotency_key, annotator) or _by_item(session, lease)
        if stored is None:
            raise Conflict("this item was judged meanwhile: reload it")
        return Submission(stored, created=False)
    assignment_service.complete(session, lease=lease, now=now)
    if lease.item.purpose == ItemPurpose.GOLD and not lease.is_repeat:
        gold_service.score_gold(session, project=project, item_id=lease.item_id, annotator_id=annotator.id,
                                choice=judgement.choice,
                                ratings={r.attribute: r.value for r in judgement.ratings}, now=now)
    return Submission(judgement, created=True)


def skip(session: Session, *, lease_id: int, annotator: User, now: datetime,
         project_id: int | None = None) -> None:
    """Give the item back unjudged (its slot returns); the annotator is never offered it again.

    Idempotent: skipping a completed lease changes nothing; a lease already released by expiry is gone
    with its slot, so there is nothing left to give back.
    """
    try:
        lease = assignment_service.lock_lease(session, lease_id=lease_id, annotator=annotator,
                                              project_id=project_id)
    except Conflict:
        return
    if lease.completed_at is None:
        assignment_service.give_back(session, lease=lease, now=now)


_IN_THE_WAY = select(or_(guidelines_service.unacknowledged(bindparam("project_id"), bindparam("user_id")),
                         gold_service.may_gate(bindparam("project_id"), bindparam("user_id"))))


def readiness(session: Session, *, project: Project, annotator: User, now: datetime) -> Readiness:
    """Guidelines to acknowledge first, else clearance(). One query in the common case (nothing to
    acknowledge, not paused, no calibration set): it runs before every item an annotator gets."""
    if not session.scalar(_IN_THE_WAY, {"project_id": project.id, "user_id": annotator.id}):
        return Readiness()
    pending = guidelines_service.pending_acknowledgement(session, project_id=project.id, user_id=annotator.id)
    if pending is not None:
        return Readiness(pending=pending)
    return Readiness(stop=clearance(session, project=project, annotator=annotator, now=now))


def clearance(session: Session, *, project: Project, annotator: User,
              now: datetime) -> gold_service.Gate | None:
    """Why the annotator may take no item now (paused, calibration due or failed), or None: may work."""
    since = guidelines_service.recalibration_since(session, project_id=project.id)
    return gold_service.gate(session, project=project, user_id=annotator.id, required_since=since, now=now)


def self_consistency(session: Session, *, project_id: int) -> dict[int, tuple[int, int]]:
    """Per annotator: (repeats answered like the original, repeats judged). A pair is consistent when the
    canonical choice is the same; a Likert single when every rating is within LIKERT_TOLERANCE."""
    repeat, original = aliased(Judgement), aliased(Judgement)
    ours, theirs = aliased(Rating), aliased(Rating)
    gap = (select(func.max(func.abs(ours.value - theirs.value)))
           .where(ours.judgement_id == repeat.id, theirs.judgement_id == original.id,
                  ours.attribute == theirs.attribute).scalar_subquery())
    consistent = case((repeat.choice.is_not(None), repeat.choice == original.choice),
                      else_=func.coalesce(gap, LIKERT_MAX) <= LIKERT_TOLERANCE)
    rows = session.execute(
        select(repeat.annotator_id, func.count().filter(consistent), func.count())
        .join(original, (original.item_id == repeat.item_id) & (original.annotator_id == repeat.annotator_id)
              & original.is_repeat.is_(False))
        .where(repeat.project_id == project_id, repeat.is_repeat.is_(True))
        .group_by(repeat.annotator_id)).all()
    return {annotator_id: (same, total) for annotator_id, same, total in rows}


def next_item(session: Session, *, project: Project, annotator: User, now: datetime) -> Workspace:
    """The annotator's current or next item in the project (claimed now), and their count so far."""
    return Workspace(item=claim_item(session, project=project, annotator=annotator, now=now),
                     done=done_count(session, project_id=project.id, annotator=annotator))


def claim_item(session: Session, *, project: Project, annotator: User, now: datetime) -> ItemOut | None:
    """The annotator's current or next item in the project (claimed now); None: nothing left."""
    lease = assignment_service.claim_next_item(session, project=project, annotator=annotator, now=now)
    return describe(session, lease=lease, project=project) if lease is not None else None


def lease_workspace(session: Session, *, lease_id: int, annotator: User, project: Project) -> Workspace:
    """The workspace for one of the annotator's leases (to show it again, e.g. after invalid input)."""
    lease = assignment_service.get_lease(session, lease_id=lease_id, annotator=annotator,
                                         project_id=project.id)
    return Workspace(item=describe(session, lease=lease, project=project),
                     done=done_count(session, project_id=project.id, annotator=annotator))


_A, _B = aliased(Candidate), aliased(Candidate)
# Built once: constructing the statement (two aliases and their column proxies) cost more than running it.
_SHOWN = (select(Item.kind, Prompt.messages, _A.text, _B.text).join(Prompt, Prompt.id == Item.prompt_id)
          .join(_A, _A.id == Item.candidate_a_id).outerjoin(_B, _B.id == Item.candidate_b_id)
          .where(Item.id == bindparam("item_id")))


def describe(session: Session, *, lease: Lease, project: Project) -> ItemOut:
    """The leased item as the annotator sees it: responses in SHOWN order, a fresh idempotency key.

    Plain columns, not ORM objects: every next-item request runs this, and loading four objects costs
    about twice as much.
    """
    kind, messages, text_a, text_b = session.execute(_SHOWN, {"item_id": lease.item_id}).one()
    texts = {"a": text_a, "b": text_b or ""}
    sides = policy.shown_order(lease.swapped) if kind == ItemKind.PAIR else ("a",)
    return ItemOut(
        lease_id=lease.id, item_id=lease.item_id, kind="pair" if kind == ItemKind.PAIR else "single",
        prompt=[Message(role=str(m.get("role", "user")), content=str(m.get("content", "")))
                for m in messages],
        responses=[ShownResponse(side=shown, text=texts[canonical])
                   for shown, canonical in zip(policy.SIDES, sides, strict=False)],
        attributes=[Attribute.model_validate(a) for a in project.attributes],
        expires_at=lease.expires_at, idempotency_key=new_idempotency_key(),
    )


def done_count(session: Session, *, project_id: int, annotator: User) -> int:
    query = select(func.count(Judgement.id)).where(Judgement.project_id == project_id,
                                                   Judgement.annotator_id == annotator.id)
    return session.scalar(query) or 0


# Built once; the other columns come from the parameters. The version in force, as in version_in_force.
_INSERT_JUDGEMENT = (
    pg_insert(Judgement)
    .values(guideline_version_id=guidelines_service.version_in_force_query(
        bindparam("in_force_project"), bindparam("in_force_user")).scalar_subquery())
    .on_conflict_do_nothing().returning(Judgement)
)


def _insert(session: Session, lease: Lease, project: Project, form: JudgementIn) -> Judgement | None:
    """INSERT the judgement (its ratings loaded), or None when one of its unique keys is taken.

    ON CONFLICT DO NOTHING instead of a savepoint around a plain INSERT: one round trip, not three; the
    guideline version in force is a subquery of the same statement.
    """
    values, ratings = build_judgement(LeaseFacts.of(lease), project.attribute_names, form)
    judgement: Judgement | None = session.scalar(
        _INSERT_JUDGEMENT,
        {**values, "in_force_project": lease.project_id, "in_force_user": lease.annotator_id})
    if judgement is None:
        return None
    rows = [Rating(judgement_id=judgement.id, attribute=name, value=value) for name, value in ratings]
    if rows:
        session.add_all(rows)
        session.flush()
    set_committed_value(judgement, "ratings", rows)
    return judgement


@dataclass(frozen=True)
class LeaseFacts:
    """What a judgement takes from its lease and item (the lean path reads these as plain columns)."""

    id: int
    project_id: int
    item_id: int
    annotator_id: int
    swapped: bool
    is_repeat: bool
    kind: ItemKind

    @classmethod
    def of(cls, lease: Lease) -> LeaseFacts:
        return cls(lease.id, lease.project_id, lease.item_id, lease.annotator_id, lease.swapped,
                   lease.is_repeat, ItemKind(lease.item.kind))


def build_judgement(lease: LeaseFacts, attribute_names: list[str],
                    form: JudgementIn) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """The judgement's columns and its ratings (attribute, value), checked against the item's kind."""
    if lease.kind == ItemKind.PAIR:
        if form.ratings:
            raise Invalid("ratings are for Likert items; this item is a pair", field="ratings")
        choice, strength = _pairwise(form, lease.swapped)
        ratings: list[tuple[str, int]] = []
    else:
        if form.choice is not None:
            raise Invalid("a Likert item takes ratings, not a choice", field="choice")
        choice, strength = None, None
        ratings = _likert(form, attribute_names)
    return {
        "project_id": lease.project_id, "item_id": lease.item_id, "lease_id": lease.id,
        "annotator_id": lease.annotator_id, "choice": choice, "strength": strength, "swapped": lease.swapped,
        "rationale": form.rationale, "flags": list(form.flags), "seconds": form.seconds,
        "idempotency_key": form.idempotency_key, "is_repeat": lease.is_repeat,
    }, ratings


def _pairwise(form: JudgementIn, swapped: bool) -> tuple[Choice, int | None]:
    """The canonical choice (the side swap undone) and the strength, which only a or b carries."""
    if form.choice is None:
        raise Invalid("choose A, B, tie or both bad", field="choice")
    choice = Choice(policy.to_canonical(form.choice, swapped))
    if choice not in (Choice.A, Choice.B):
        return choice, None
    if form.strength is None:
        raise Invalid("say how much better: slightly, clearly or much better", field="strength")
    return choice, form.strength


def _likert(form: JudgementIn, attributes: list[str]) -> list[tuple[str, int]]:
    """One rating per project attribute, each 1-7; every problem is reported at once (details)."""
    errors = [{"field": f"rating_{name}", "message": f"{name}: this attribute is not rated in this project"}
              for name in form.ratings if name not in attributes]
    for name in attributes:
        value = form.ratings.get(name)
        if value is None:
            errors.append({"field": f"rating_{name}", "message": f"{name}: choose a rating from 1 to 7"})
        elif not LIKERT_MIN <= value <= LIKERT_MAX:
            errors.append({"field": f"rating_{name}", "message": f"{name}: ratings go from 1 to 7"})
    if errors:
        raise Invalid(errors[0]["message"], field=errors[0]["field"], details=errors)
    return [(name, form.ratings[name]) for name in attributes]


def _by_key(session: Session, key: str, annotator: User) -> Judgement | None:
    """The judgement stored under this idempotency key; Conflict if another annotator used the key."""
    judgement = session.scalar(
        select(Judgement).where(Judgement.idempotency_key == key).options(selectinload(Judgement.ratings))
    )
    if judgement is not None and judgement.annotator_id != annotator.id:
        raise Conflict("this idempotency key was already used", field="idempotency_key")
    return judgement


def _by_item(session: Session, lease: Lease) -> Judgement | None:
    return session.scalar(
        select(Judgement)
        .where(Judgement.item_id == lease.item_id, Judgement.annotator_id == lease.annotator_id,
               Judgement.is_repeat.is_(lease.is_repeat))
        .options(selectinload(Judgement.ratings))
    )


def _judgement_of(session: Session, lease: Lease) -> Judgement:
    """The judgement of a completed lease; Conflict when the lease was skipped instead."""
    judgement = None if lease.skipped else _by_item(session, lease)
    if judgement is None:
        raise Conflict("you skipped this item, so it was not judged")
    return judgement
