"""Annotator standing: automatic and manual pauses, resumes, calibration grants, and the standings table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.audit import service as audit_service
from app.errors import Invalid, NotFound
from app.gold import calibration, policy
from app.gold.models import AnnotatorStanding, GoldScore, StandingStatus
from app.projects import service as projects_service
from app.projects.models import Project, ProjectMember


def locked(session: Session, *, project_id: int, user_id: int) -> AnnotatorStanding:
    """The standing row, created if missing, locked FOR UPDATE: changes to one standing queue up."""
    session.execute(pg_insert(AnnotatorStanding).values(project_id=project_id, user_id=user_id,
                                                        status=StandingStatus.ACTIVE, reason="")
                    .on_conflict_do_nothing())
    standing = session.scalar(
        select(AnnotatorStanding).where(AnnotatorStanding.project_id == project_id,
                                        AnnotatorStanding.user_id == user_id)
        .with_for_update().execution_options(populate_existing=True))
    assert standing is not None  # inserted above
    return standing


def review(session: Session, *, project: Project, user_id: int, now: datetime) -> None:
    standing = locked(session, project_id=project.id, user_id=user_id)
    if standing.status == StandingStatus.PAUSED:
        return
    outcomes = list(session.scalars(
        select(GoldScore.correct)
        .where(GoldScore.project_id == project.id, GoldScore.annotator_id == user_id,
               GoldScore.id > standing.window_after_id)
        .order_by(GoldScore.id.desc()).limit(max(project.gold_window, project.gold_min))))
    reason = policy.pause_reason(outcomes[:project.gold_window], judged=len(outcomes), bar=project.gold_bar,
                                 window=project.gold_window, minimum=project.gold_min)
    if reason is not None:
        _set_status(session, standing, StandingStatus.PAUSED, reason, actor_id=None, now=now)


def _set_status(session: Session, standing: AnnotatorStanding, status: StandingStatus, reason: str, *,
                actor_id: int | None, now: datetime) -> None:
    before = {"status": str(standing.status), "reason": standing.reason}
    standing.status, standing.reason = status, reason
    standing.changed_at, standing.changed_by_id = now, actor_id
    session.flush()
    user = session.get(User, standing.user_id)
    action = "annotator.pause" if status == StandingStatus.PAUSED else "annotator.resume"
    audit_service.record(session, actor_id=actor_id, action=action, project_id=standing.project_id,
                         target=user.username if user else str(standing.user_id), before=before,
                         after={"status": str(status), "reason": reason, "user_id": standing.user_id})


def _known_user(session: Session, user_id: int, project: Project) -> User:
    """The annotator `user_id` of this project: a member, or an admin (admins may annotate anywhere)."""
    user = session.get(User, user_id)
    if user is None or (user.role != Role.ADMIN
                        and not projects_service.is_member(session, project_id=project.id, user_id=user_id)):
        raise NotFound("no such annotator in this project", field="user_id")
    if user.role == Role.RESEARCHER:
        raise Invalid("researchers do not annotate, so they have no standing to change", field="user_id")
    return user


def pause(session: Session, *, project: Project, user_id: int, reason: str, actor: User,
          now: datetime) -> AnnotatorStanding:
    """Pause an annotator in this project by hand; pausing a paused annotator changes nothing."""
    _known_user(session, user_id, project)
    standing = locked(session, project_id=project.id, user_id=user_id)
    if standing.status != StandingStatus.PAUSED:
        _set_status(session, standing, StandingStatus.PAUSED, reason, actor_id=actor.id, now=now)
    return standing


def resume(session: Session, *, project: Project, user_id: int, actor: User,
           now: datetime) -> AnnotatorStanding:
    """Let a paused annotator work again. The gold items judged so far no longer count toward an
    automatic pause: the bar applies again after `gold_min` new ones. Resuming an active one is a no-op."""
    _known_user(session, user_id, project)
    standing = locked(session, project_id=project.id, user_id=user_id)
    if standing.status == StandingStatus.PAUSED:
        standing.window_after_id = session.scalar(
            select(func.coalesce(func.max(GoldScore.id), 0))
            .where(GoldScore.project_id == project.id, GoldScore.annotator_id == user_id)) or 0
        _set_status(session, standing, StandingStatus.ACTIVE, "", actor_id=actor.id, now=now)
    return standing


def grant_attempt(session: Session, *, project: Project, user_id: int, actor: User,
                  now: datetime) -> AnnotatorStanding:
    """One more calibration attempt for an annotator (audited as calibration.grant)."""
    user = _known_user(session, user_id, project)
    standing = locked(session, project_id=project.id, user_id=user_id)
    standing.extra_attempts += 1
    standing.extra_attempts_at = now
    session.flush()
    audit_service.record(session, actor_id=actor.id, action="calibration.grant", project_id=project.id,
                         target=user.username,
                         after={"user_id": user_id, "extra_attempts": standing.extra_attempts})
    return standing


@dataclass(frozen=True)
class Standing:
    user_id: int
    username: str
    status: Literal["active", "paused"]
    reason: str
    changed_at: datetime | None
    changed_by_id: int | None
    gold_correct: int
    gold_total: int
    gold_accuracy: float | None
    recent_correct: int
    recent_total: int
    recent_accuracy: float | None
    calibration_passed: bool
    calibration_state: Literal["passed", "due", "blocked", "not_required"]
    calibration_attempts: int


def _people(session: Session, project_id: int) -> list[User]:
    """Annotator members, and anyone else who has a standing, a gold score or an attempt here."""
    involved = (
        select(ProjectMember.user_id).where(ProjectMember.project_id == project_id)
        .union(select(AnnotatorStanding.user_id).where(AnnotatorStanding.project_id == project_id),
               select(GoldScore.annotator_id).where(GoldScore.project_id == project_id),
               calibration.participants(project_id)))
    users = session.scalars(select(User).where(User.id.in_(involved)).order_by(User.username))
    return [u for u in users if u.role != Role.RESEARCHER]


def _accuracy(correct: int, total: int) -> float | None:
    return correct / total if total else None


def standings(session: Session, *, project_id: int,
              required_since: datetime | None = None) -> dict[int, Standing]:
    """Every annotator's standing in the project: status, gold accuracy (all time and over the window
    that decides a pause), calibration. A few indexed queries, whatever the number of judgements."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("no such project")
    rows = {s.user_id: s for s in session.scalars(
        select(AnnotatorStanding).where(AnnotatorStanding.project_id == project_id))}
    totals = {a: (c, t) for a, c, t in session.execute(
        select(GoldScore.annotator_id, func.count().filter(GoldScore.correct), func.count())
        .where(GoldScore.project_id == project_id).group_by(GoldScore.annotator_id))}
    needs_calibration = calibration.has_items(session, project_id=project_id)
    attempts = calibration.outcomes(session, project_id=project_id)
    result: dict[int, Standing] = {}
    for user in _people(session, project_id):
        row = rows.get(user.id)
        recent = _recent(session, project, user.id, row.window_after_id if row else 0)
        state = calibration.verdict(project, attempts.get(user.id, []), required_since=required_since,
                                    standing=row)
        correct, total = totals.get(user.id, (0, 0))
        result[user.id] = Standing(
            user_id=user.id, username=user.username,
            status="paused" if row is not None and row.status == StandingStatus.PAUSED else "active",
            reason=row.reason if row else "", changed_at=row.changed_at if row else None,
            changed_by_id=row.changed_by_id if row else None, gold_correct=correct, gold_total=total,
            gold_accuracy=_accuracy(correct, total), recent_correct=sum(recent), recent_total=len(recent),
            recent_accuracy=_accuracy(sum(recent), len(recent)), calibration_passed=state[0] == "passed",
            calibration_state=state[0] if needs_calibration else "not_required",
            calibration_attempts=len(attempts.get(user.id, [])))
    return result


def _recent(session: Session, project: Project, user_id: int, after_id: int) -> list[bool]:
    return list(session.scalars(
        select(GoldScore.correct)
        .where(GoldScore.project_id == project.id, GoldScore.annotator_id == user_id, GoldScore.id > after_id)
        .order_by(GoldScore.id.desc()).limit(project.gold_window)))
