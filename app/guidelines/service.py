"""Guidelines: versioned markdown per project (drafts, frozen published versions, diffs), who read which."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from app.accounts.models import Role, User
from app.audit import service as audit_service
from app.errors import Conflict, Invalid, NotFound
from app.guidelines.models import GuidelineAcknowledgement, GuidelineVersion
from app.guidelines.schemas import MAX_SUMMARY


def _published(project_id: int) -> Select[GuidelineVersion]:
    return select(GuidelineVersion).where(GuidelineVersion.project_id == project_id,
                                          GuidelineVersion.published_at.is_not(None))


def active_version(session: Session, *, project_id: int) -> GuidelineVersion | None:
    """The newest published version: what annotators work under. None before the first publish."""
    return session.scalar(_published(project_id).order_by(GuidelineVersion.number.desc()).limit(1))


def pending_acknowledgement(session: Session, *, project_id: int, user_id: int) -> GuidelineVersion | None:
    """The active version when this user has not acknowledged it yet (their next item waits), else None."""
    acknowledged = (select(GuidelineAcknowledgement.id)
                    .where(GuidelineAcknowledgement.version_id == GuidelineVersion.id,
                           GuidelineAcknowledgement.user_id == user_id).exists())
    active = _published(project_id).order_by(GuidelineVersion.number.desc()).limit(1).subquery()
    query = (select(GuidelineVersion).join(active, active.c.id == GuidelineVersion.id).where(~acknowledged)
             .options(joinedload(GuidelineVersion.published_by)))
    return session.scalar(query)


def unacknowledged(project_id: int | ColumnElement[int],
                   user_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """SQL: the project has a published version and this user has not acknowledged the newest one (the
    test pending_acknowledgement makes, as an expression to fold into a larger query)."""
    active = (select(GuidelineVersion.id).where(GuidelineVersion.project_id == project_id,
                                                 GuidelineVersion.published_at.is_not(None))
              .order_by(GuidelineVersion.number.desc()).limit(1).scalar_subquery())
    acknowledged = select(GuidelineAcknowledgement.id).where(GuidelineAcknowledgement.version_id == active,
                                                             GuidelineAcknowledgement.user_id == user_id)
    return active.is_not(None) & ~acknowledged.exists()


def recalibration_since(session: Session, *, project_id: int) -> datetime | None:
    """When the newest version that asked everyone to recalibrate was published (None: never)."""
    query = select(func.max(GuidelineVersion.published_at)).where(
        GuidelineVersion.project_id == project_id, GuidelineVersion.requires_recalibration.is_(True))
    return session.scalar(query)


def version_in_force(session: Session, *, project_id: int, user_id: int) -> int | None:
    """The id of the newest version this user has acknowledged: the guidelines their judgement is made
    under. An item leased before a publish can still be submitted; it counts under the version read."""
    return session.scalar(version_in_force_query(project_id, user_id))


def version_in_force_query(project_id: int | ColumnElement[int],
                           user_id: int | ColumnElement[int]) -> Select[int]:
    """SQL: version_in_force's query, to fold into a larger statement (the judgement's INSERT)."""
    return (select(GuidelineVersion.id)
            .join(GuidelineAcknowledgement, GuidelineAcknowledgement.version_id == GuidelineVersion.id)
            .where(GuidelineVersion.project_id == project_id, GuidelineAcknowledgement.user_id == user_id)
            .order_by(GuidelineVersion.number.desc()).limit(1))


def list_versions(session: Session, *, project_id: int, viewer: User) -> list[GuidelineVersion]:
    """Newest first, the draft on top; only admins see the draft."""
    query = (select(GuidelineVersion).where(GuidelineVersion.project_id == project_id)
             .options(joinedload(GuidelineVersion.published_by))
             .order_by(GuidelineVersion.number.desc().nulls_first()))
    if viewer.role != Role.ADMIN:
        query = query.where(GuidelineVersion.published_at.is_not(None))
    return list(session.scalars(query))


def get_version(session: Session, *, project_id: int, version_id: int, viewer: User) -> GuidelineVersion:
    """A version of this project; a draft only for admins (to everyone else it does not exist)."""
    version = session.scalar(select(GuidelineVersion).where(GuidelineVersion.id == version_id)
                             .options(joinedload(GuidelineVersion.published_by)))
    if version is None or version.project_id != project_id or (
            version.is_draft and viewer.role != Role.ADMIN):
        raise NotFound("no such guideline version in this project")
    return version


def draft(session: Session, *, project_id: int) -> GuidelineVersion | None:
    query = select(GuidelineVersion).where(GuidelineVersion.project_id == project_id,
                                           GuidelineVersion.published_at.is_(None))
    return session.scalar(query)


def open_draft(session: Session, *, project_id: int, author: User, now: datetime) -> GuidelineVersion:
    """The project's draft, created (a copy of the active version) when there is none. Idempotent."""
    existing = draft(session, project_id=project_id)
    return existing if existing is not None else create_draft(session, project_id=project_id, author=author,
                                                              now=now)


def create_draft(session: Session, *, project_id: int, author: User, body: str | None = None,
                 now: datetime) -> GuidelineVersion:
    """A new draft, by default a copy of the active version. Conflict when the project has one already."""
    if body is None:
        active = active_version(session, project_id=project_id)
        body = active.body if active is not None else ""
    version = GuidelineVersion(project_id=project_id, body=body, created_by_id=author.id, created_at=now,
                               updated_at=now)
    try:
        with session.begin_nested():  # the one-draft index: a second draft rolls back only this
            session.add(version)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("this project already has a draft: edit or publish it first") from exc
    audit_service.record(session, actor_id=author.id, action="guideline.draft", project_id=project_id,
                         target=f"guideline:{version.id}", after={"characters": len(body)})
    return version


def _lock_draft(session: Session, *, project_id: int, version_id: int) -> GuidelineVersion:
    """The draft, row-locked: a concurrent save or publish of it waits, then sees the published state."""
    version = session.scalar(select(GuidelineVersion).where(GuidelineVersion.id == version_id)
                             .with_for_update().execution_options(populate_existing=True))
    if version is None or version.project_id != project_id:
        raise NotFound("no such guideline version in this project")
    if not version.is_draft:
        raise Conflict(f"{version.label} is published and frozen: start a new draft to change it")
    return version


def save_draft(session: Session, *, project_id: int, version_id: int, body: str, actor: User,
               now: datetime) -> GuidelineVersion:
    """Conflict (and nothing changed) when the version is published."""
    version = _lock_draft(session, project_id=project_id, version_id=version_id)
    if body != version.body:
        before = len(version.body)
        version.body, version.updated_at = body, now
        session.flush()
        audit_service.record(session, actor_id=actor.id, action="guideline.save", project_id=project_id,
                             target=f"guideline:{version.id}", before={"characters": before},
                             after={"characters": len(body)})
    return version


def _check_summary(summary: str) -> str:
    summary = summary.strip()
    if not summary:
        raise Invalid("say what changed: a change summary is required to publish", field="summary")
    if len(summary) > MAX_SUMMARY:
        raise Invalid(f"the change summary has at most {MAX_SUMMARY} characters", field="summary")
    return summary


def publish(session: Session, *, project_id: int, version_id: int, actor: User, summary: str,
            requires_recalibration: bool = False, body: str | None = None, now: datetime) -> GuidelineVersion:
    """Number and freeze the draft (saving `body` first when given); it becomes the active version, and its
    publisher counts as having read it. Invalid without a summary or with an empty body, Conflict when
    already published: in both cases nothing changes."""
    summary = _check_summary(summary)
    version = _lock_draft(session, project_id=project_id, version_id=version_id)
    body = version.body if body is None else body
    if not body.strip():
        raise Invalid("the guidelines are empty: write them before publishing", field="body")
    previous = active_version(session, project_id=project_id)
    number = previous.number + 1 if previous is not None and previous.number is not None else 1
    version.body, version.summary, version.requires_recalibration = body, summary, requires_recalibration
    version.number, version.published_at, version.published_by_id = number, now, actor.id
    version.updated_at = now
    session.flush()
    _acknowledge(session, version_id=version.id, user_id=actor.id, now=now)
    audit_service.record(
        session, actor_id=actor.id, action="guideline.publish", project_id=project_id, target=version.label,
        before={"version": previous.number} if previous is not None else None,
        after={"version": number, "summary": summary, "requires_recalibration": requires_recalibration,
               "characters": len(body)})
    return version


def _acknowledge(session: Session, *, version_id: int, user_id: int, now: datetime) -> None:
    """Idempotent: a second acknowledgement keeps the first (and its time)."""
    session.execute(pg_insert(GuidelineAcknowledgement)
                    .values(version_id=version_id, user_id=user_id, acknowledged_at=now)
                    .on_conflict_do_nothing(index_elements=["version_id", "user_id"]))


def acknowledge(session: Session, *, project_id: int, version_id: int, user: User,
                now: datetime) -> GuidelineAcknowledgement:
    """Record that `user` has read a published version of this project. Idempotent."""
    version = get_version(session, project_id=project_id, version_id=version_id, viewer=user)
    if version.is_draft:
        raise Conflict("a draft cannot be acknowledged: only published versions")
    _acknowledge(session, version_id=version.id, user_id=user.id, now=now)
    stored = session.scalar(select(GuidelineAcknowledgement).where(
        GuidelineAcknowledgement.version_id == version.id, GuidelineAcknowledgement.user_id == user.id))
    assert stored is not None  # inserted just now, or kept from before
    return stored


def compare(session: Session, *, project_id: int, old_id: int, new_id: int,
            viewer: User) -> tuple[GuidelineVersion, GuidelineVersion]:
    """Two versions of this project that `viewer` may read, to diff (any two, in either order)."""
    old = get_version(session, project_id=project_id, version_id=old_id, viewer=viewer)
    new = get_version(session, project_id=project_id, version_id=new_id, viewer=viewer)
    return old, new
