"""Gold: expected answers of gold and calibration items, gold scoring, annotator standing and the gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, joinedload

from app.accounts.models import User
from app.audit import service as audit_service
from app.errors import Invalid, NotFound
from app.gold import calibration, policy, standing
from app.gold.models import AnnotatorStanding, GoldAnswer, GoldScore, StandingStatus
from app.gold.schemas import GoldAnswerIn
from app.projects.models import Item, ItemKind, ItemPurpose, Project

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
        standing.review(session, project=project, user_id=annotator_id, now=now)
    return correct


def may_gate(project_id: int | ColumnElement[int], user_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """SQL: gate() may stop this user (paused, or the project has a calibration set); false means it
    surely returns None, so callers can skip it."""
    paused = select(AnnotatorStanding.user_id).where(AnnotatorStanding.project_id == project_id,
                                                     AnnotatorStanding.user_id == user_id,
                                                     AnnotatorStanding.status == StandingStatus.PAUSED)
    return exists(paused) | exists(calibration.calibration_items(project_id))


def gate(session: Session, *, project: Project, user_id: int, required_since: datetime | None,
         now: datetime) -> Gate | None:
    """Why the annotator may not take items now, or None. When calibration is due, the open attempt is
    returned (or a new one started), so a reload never starts a second one."""
    row = session.get(AnnotatorStanding, (project.id, user_id))
    if row is not None and row.status == StandingStatus.PAUSED:
        return Gate("paused", row.reason)
    if not calibration.has_items(session, project_id=project.id):
        return None
    state, allowed, outcomes = calibration.state(session, project=project, user_id=user_id,
                                                 required_since=required_since, standing=row)
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


# Standing changes and the standings table live in standing.py; these names are the domain's interface.
Standing = standing.Standing
standings = standing.standings
pause = standing.pause
resume = standing.resume
grant_attempt = standing.grant_attempt
