"""Gold: expected answers of gold and calibration items, gold scoring, annotator standing and the gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, joinedload

from app.accounts.models import Role, User
from app.audit import service as audit_service
from app.errors import Invalid, NotFound
from app.gold import calibration, policy
from app.gold.models import AnnotatorStanding, GoldAnswer, GoldScore, StandingStatus
from app.gold.schemas import GoldAnswerIn
from app.projects.models import Item, ItemKind, ItemPurpose, Project, ProjectMember

SPECIAL = (ItemPurpose.GOLD, ItemPurpose.CALIBRATION)


@dataclass(frozen=True)
class Gate:
    """Why an annotator gets no item: paused, calibration due (in attempt `attempt_id`), or blocked."""

    status: Literal["paused", "calibration", "blocked"]
    reason: str
    attempt_id: int | None = None

    @property
    def detail(self) -> str:
        return f"{self.status}: {self.reason}"


def serve_kind(project: Project, *, annotator_id: int, judged: int) -> policy.Kind:
    """What the annotator's next claim serves (regular, gold or a repeat); see policy.serve_kind."""
    return policy.serve_kind(annotator_id, judged, gold_rate=project.gold_rate,
                             repeat_rate=project.repeat_rate)


def fallbacks(kind: policy.Kind) -> tuple[policy.Kind, ...]:
    return policy.FALLBACKS[kind]


def get_item(session: Session, *, project_id: int, item_id: int, lock: bool = False) -> Item:
    """The project's item with its prompt and candidates loaded (NotFound in another project)."""
    query = (select(Item).where(Item.id == item_id, Item.project_id == project_id)
             .options(joinedload(Item.prompt), joinedload(Item.candidate_a), joinedload(Item.candidate_b)))
    item = session.scalar(query.with_for_update(of=Item) if lock else query)
    if item is None:
        raise NotFound("no such item in this project", field="item_id")
    return item


def answer_of(session: Session, *, item_id: int) -> GoldAnswer | None:
    return session.get(GoldAnswer, item_id)


def _check(project: Project, item: Item, data: GoldAnswerIn) -> None:
    if item.kind == ItemKind.PAIR:
        if data.choice is None:
            raise Invalid("a pair needs the expected choice: a, b or tie", field="choice")
        if data.ranges:
            raise Invalid("ranges are for Likert items; this item is a pair", field="ranges")
        return
    if data.choice is not None:
        raise Invalid("a Likert item takes ranges, not a choice", field="choice")
    if not data.ranges:
        raise Invalid("give an acceptable range for at least one attribute", field="ranges")
    unknown = sorted(set(data.ranges) - set(project.attribute_names))
    if unknown:
        raise Invalid(f"{unknown[0]}: this attribute is not rated in this project", field=f"min_{unknown[0]}")


def _snapshot(item: Item, answer: GoldAnswer | None) -> dict[str, Any]:
    if answer is None:
        return {"purpose": str(item.purpose)}
    return {"purpose": str(item.purpose), "choice": answer.choice, "ranges": answer.ranges,
            "explanation": answer.explanation}


def mark(session: Session, *, project: Project, item_id: int, data: GoldAnswerIn, actor: User,
         now: datetime) -> GoldAnswer:
    """Make the item gold or calibration with this expected answer (or change its answer): its gold
    scores are rescored, or dropped when it stops being gold. Audited as gold.mark / calibration.mark."""
    item = get_item(session, project_id=project.id, item_id=item_id, lock=True)
    _check(project, item, data)
    answer = answer_of(session, item_id=item.id)
    before = _snapshot(item, answer)
    if answer is None:
        answer = GoldAnswer(item_id=item.id, project_id=project.id, created_at=now)
        session.add(answer)
    answer.choice = data.choice
    answer.ranges = {name: [low, high] for name, (low, high) in data.ranges.items()}
    answer.explanation = data.explanation
    answer.updated_by_id, answer.updated_at = actor.id, now
    item.purpose = ItemPurpose(data.purpose)
    session.flush()
    _rescore(session, item, answer)
    audit_service.record(session, actor_id=actor.id, action=f"{data.purpose}.mark", project_id=project.id,
                         target=f"item {item.id}", before=before, after=_snapshot(item, answer))
    return answer


def unmark(session: Session, *, project: Project, item_id: int, actor: User) -> None:
    """Back to a regular item: its answer key and gold scores go; calibration answers already given stay."""
    item = get_item(session, project_id=project.id, item_id=item_id, lock=True)
    answer = answer_of(session, item_id=item.id)
    if answer is None and item.purpose == ItemPurpose.REGULAR:
        raise Invalid("this item is neither gold nor calibration", field="item_id")
    before = _snapshot(item, answer)
    action = f"{item.purpose}.unmark"
    item.purpose = ItemPurpose.REGULAR
    if answer is not None:
        session.delete(answer)
    session.execute(delete(GoldScore).where(GoldScore.item_id == item.id))
    session.flush()
    audit_service.record(session, actor_id=actor.id, action=action, project_id=project.id,
                         target=f"item {item.id}", before=before, after={"purpose": "regular"})


def _rescore(session: Session, item: Item, answer: GoldAnswer) -> None:
    if item.purpose != ItemPurpose.GOLD:
        session.execute(delete(GoldScore).where(GoldScore.item_id == item.id))
        return
    for score in session.scalars(select(GoldScore).where(GoldScore.item_id == item.id)):
        score.correct = policy.answer_correct(answer.choice, answer.ranges, score.choice, score.ratings)
    session.flush()


def answers(session: Session, *, project_id: int) -> list[tuple[Item, GoldAnswer]]:
    """The project's gold and calibration items with their answers, newest change first."""
    rows = session.execute(
        select(Item, GoldAnswer).join(GoldAnswer, GoldAnswer.item_id == Item.id)
        .where(Item.project_id == project_id, Item.purpose.in_(SPECIAL))
        .options(joinedload(Item.prompt)).order_by(GoldAnswer.updated_at.desc(), Item.id)
    ).all()
    return [(item, answer) for item, answer in rows]


def browse(session: Session, *, project_id: int, after_id: int = 0, limit: int = 50) -> list[Item]:
    """Regular items by id (with their prompts), to pick gold and calibration items from."""
    return list(session.scalars(
        select(Item).where(Item.project_id == project_id, Item.purpose == ItemPurpose.REGULAR,
                           Item.id > after_id)
        .options(joinedload(Item.prompt)).order_by(Item.id).limit(limit)))


def score_gold(session: Session, *, project: Project, item_id: int, annotator_id: int, choice: str | None,
               ratings: dict[str, int], now: datetime) -> bool | None:
    """Score a judgement on a gold item (idempotent per item and annotator) and pause the annotator when
    their recent gold accuracy falls below the project's bar. None: the item has no answer key."""
    answer = answer_of(session, item_id=item_id)
    if answer is None:
        return None
    correct = policy.answer_correct(answer.choice, answer.ranges, choice, ratings)
    stored = session.scalar(
        pg_insert(GoldScore).values(project_id=project.id, item_id=item_id, annotator_id=annotator_id,
                                    choice=choice, ratings=ratings, correct=correct)
        .on_conflict_do_nothing(index_elements=["item_id", "annotator_id"]).returning(GoldScore.id))
    if stored is not None:
        _review(session, project=project, user_id=annotator_id, now=now)
    return correct


def _standing(session: Session, *, project_id: int, user_id: int) -> AnnotatorStanding:
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


def _review(session: Session, *, project: Project, user_id: int, now: datetime) -> None:
    standing = _standing(session, project_id=project.id, user_id=user_id)
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


def _known_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", field="user_id")
    return user


def pause(session: Session, *, project: Project, user_id: int, reason: str, actor: User,
          now: datetime) -> AnnotatorStanding:
    """Pause an annotator in this project by hand; pausing a paused annotator changes nothing."""
    _known_user(session, user_id)
    standing = _standing(session, project_id=project.id, user_id=user_id)
    if standing.status != StandingStatus.PAUSED:
        _set_status(session, standing, StandingStatus.PAUSED, reason, actor_id=actor.id, now=now)
    return standing


def resume(session: Session, *, project: Project, user_id: int, actor: User,
           now: datetime) -> AnnotatorStanding:
    """Let a paused annotator work again. The gold items judged so far no longer count toward an
    automatic pause: the bar applies again after `gold_min` new ones. Resuming an active one is a no-op."""
    _known_user(session, user_id)
    standing = _standing(session, project_id=project.id, user_id=user_id)
    if standing.status == StandingStatus.PAUSED:
        standing.window_after_id = session.scalar(
            select(func.coalesce(func.max(GoldScore.id), 0))
            .where(GoldScore.project_id == project.id, GoldScore.annotator_id == user_id)) or 0
        _set_status(session, standing, StandingStatus.ACTIVE, "", actor_id=actor.id, now=now)
    return standing


def grant_attempt(session: Session, *, project: Project, user_id: int, actor: User,
                  now: datetime) -> AnnotatorStanding:
    """One more calibration attempt for an annotator (audited as calibration.grant)."""
    user = _known_user(session, user_id)
    standing = _standing(session, project_id=project.id, user_id=user_id)
    standing.extra_attempts += 1
    standing.extra_attempts_at = now
    session.flush()
    audit_service.record(session, actor_id=actor.id, action="calibration.grant", project_id=project.id,
                         target=user.username,
                         after={"user_id": user_id, "extra_attempts": standing.extra_attempts})
    return standing


def calibration_required_since(session: Session, *, project_id: int) -> datetime | None:
    """Since when every annotator must have passed calibration (again); None: a pass at any time counts.

    The guidelines domain decides this (a version published with "everyone recalibrates"); it sits beside
    gold, so this domain cannot ask it. Callers above both pass their answer to gate() and standings().
    """
    return None


def gate(session: Session, *, project: Project, user_id: int, required_since: datetime | None,
         now: datetime) -> Gate | None:
    """Why the annotator may not take items now, or None. When calibration is due, the open attempt is
    returned (or a new one started), so a reload never starts a second one."""
    standing = session.get(AnnotatorStanding, (project.id, user_id))
    if standing is not None and standing.status == StandingStatus.PAUSED:
        return Gate("paused", standing.reason)
    if not calibration.has_items(session, project_id=project.id):
        return None
    state, allowed, outcomes = calibration.state(session, project=project, user_id=user_id,
                                                 required_since=required_since, standing=standing)
    if state == "passed":
        return None
    if state == "blocked":
        return Gate("blocked", f"you did not pass calibration in {len(outcomes)} attempt(s); an admin can "
                               "grant you another attempt")
    attempt = calibration.open_or_start(session, project=project, user_id=user_id,
                                        retries_left=allowed - len(outcomes) - 1, now=now)
    return Gate("calibration", "judge the calibration items first: after each one you see the expected "
                               f"answer; {project.calibration_pass:.0%} correct opens the work",
                attempt_id=attempt.id)


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
    result: dict[int, Standing] = {}
    for user in _people(session, project_id):
        row = rows.get(user.id)
        recent = _recent(session, project, user.id, row.window_after_id if row else 0)
        state = calibration.state(session, project=project, user_id=user.id, required_since=required_since,
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
            calibration_attempts=calibration.attempt_count(session, project_id=project_id, user_id=user.id))
    return result


def _recent(session: Session, project: Project, user_id: int, after_id: int) -> list[bool]:
    return list(session.scalars(
        select(GoldScore.correct)
        .where(GoldScore.project_id == project.id, GoldScore.annotator_id == user_id, GoldScore.id > after_id)
        .order_by(GoldScore.id.desc()).limit(project.gold_window)))
