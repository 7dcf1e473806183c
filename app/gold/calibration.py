"""Calibration (qualification) sessions: an attempt judges every calibration item, sees the expected
answer and explanation after each, and passes with the project's share of correct answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from app.accounts.models import Role, User
from app.errors import Conflict, Invalid, NotFound, PermissionDenied
from app.gold import policy
from app.gold.models import AnnotatorStanding, CalibrationAnswer, CalibrationAttempt, GoldAnswer
from app.gold.schemas import (
    LIKERT_MAX,
    LIKERT_MIN,
    AttemptAnswerOut,
    AttemptDetailOut,
    AttemptOut,
    AttributeOut,
    CalibrationAnswerIn,
    CalibrationItemOut,
    FeedbackOut,
    ShownSide,
    Turn,
)
from app.projects.models import Item, ItemKind, ItemPurpose, Project


def calibration_items(project_id: int | ColumnElement[int]) -> Select[int]:
    return (select(Item.id).join(GoldAnswer, GoldAnswer.item_id == Item.id)
            .where(Item.project_id == project_id, Item.purpose == ItemPurpose.CALIBRATION))


def has_items(session: Session, *, project_id: int) -> bool:
    return session.scalar(calibration_items(project_id).limit(1)) is not None


def participants(project_id: int) -> Select[int]:
    return select(CalibrationAttempt.user_id).where(CalibrationAttempt.project_id == project_id)


def attempt_count(session: Session, *, project_id: int, user_id: int) -> int:
    return session.scalar(select(func.count(CalibrationAttempt.id)).where(
        CalibrationAttempt.project_id == project_id, CalibrationAttempt.user_id == user_id)) or 0


def outcomes(session: Session, *, project_id: int,
             user_id: int | None = None) -> dict[int, list[policy.AttemptOutcome]]:
    """Each annotator's attempts in the project (unfinished ones included), oldest first."""
    query = (select(CalibrationAttempt.user_id, CalibrationAttempt.finished_at, CalibrationAttempt.passed)
             .where(CalibrationAttempt.project_id == project_id).order_by(CalibrationAttempt.id))
    if user_id is not None:
        query = query.where(CalibrationAttempt.user_id == user_id)
    result: dict[int, list[policy.AttemptOutcome]] = {}
    for user, finished_at, passed in session.execute(query):
        result.setdefault(user, []).append(policy.AttemptOutcome(finished_at, passed))
    return result


def verdict(project: Project, attempts: list[policy.AttemptOutcome], *, required_since: datetime | None,
            standing: AnnotatorStanding | None
            ) -> tuple[policy.CalibrationState, int, list[policy.AttemptOutcome]]:
    """(passed | due | blocked, attempts allowed, the finished attempts that count since required_since).
    Attempts granted by an admin count when granted since required_since."""
    extra = 0
    if standing is not None and standing.extra_attempts_at is not None and (
            required_since is None or standing.extra_attempts_at >= required_since):
        extra = standing.extra_attempts
    allowed = 1 + project.calibration_retries + extra
    counted = [a for a in attempts if a.finished_at is not None
               and (required_since is None or a.finished_at >= required_since)]
    state = policy.calibration_state(attempts, required_since=required_since, allowed=allowed)
    return state, allowed, counted


def state(session: Session, *, project: Project, user_id: int, required_since: datetime | None,
          standing: AnnotatorStanding | None
          ) -> tuple[policy.CalibrationState, int, list[policy.AttemptOutcome]]:
    attempts = outcomes(session, project_id=project.id, user_id=user_id).get(user_id, [])
    return verdict(project, attempts, required_since=required_since, standing=standing)


def open_or_start(session: Session, *, project: Project, user_id: int, retries_left: int,
                  now: datetime) -> CalibrationAttempt:
    """The annotator's unfinished attempt, or a new one over the current calibration set."""
    current = session.scalar(select(CalibrationAttempt).where(
        CalibrationAttempt.project_id == project.id, CalibrationAttempt.user_id == user_id,
        CalibrationAttempt.finished_at.is_(None)).order_by(CalibrationAttempt.id).limit(1))
    if current is not None:
        return current
    number = 1 + attempt_count(session, project_id=project.id, user_id=user_id)
    items = policy.calibration_order(list(session.scalars(calibration_items(project.id))),
                                     user_id=user_id, number=number)
    attempt = CalibrationAttempt(project_id=project.id, user_id=user_id, number=number, item_ids=items,
                                 pass_mark=project.calibration_pass, retries_left=max(retries_left, 0),
                                 started_at=now)
    try:
        with session.begin_nested():
            session.add(attempt)
            session.flush()
    except IntegrityError as exc:  # the same annotator started one in another tab just now
        raise Conflict("a calibration attempt was started at the same moment; reload the page") from exc
    return attempt


def get_attempt(session: Session, *, project_id: int, attempt_id: int, user: User,
                lock: bool = False) -> CalibrationAttempt:
    """The attempt; annotators see only their own, admins every one (NotFound in another project)."""
    query = select(CalibrationAttempt).where(CalibrationAttempt.id == attempt_id)
    attempt = session.scalar(query.with_for_update() if lock else query)
    if attempt is None or attempt.project_id != project_id:
        raise NotFound("no such calibration attempt in this project")
    if attempt.user_id != user.id and user.role != Role.ADMIN:
        raise PermissionDenied("this calibration attempt belongs to another annotator")
    return attempt


def _answers(session: Session, attempt_id: int) -> dict[int, CalibrationAnswer]:
    return {a.item_id: a for a in session.scalars(
        select(CalibrationAnswer).where(CalibrationAnswer.attempt_id == attempt_id)
        .order_by(CalibrationAnswer.id))}


def _still_calibration(session: Session, item_ids: list[int]) -> set[int]:
    if not item_ids:
        return set()
    return set(session.scalars(_calibration_items_in(item_ids)))


def _calibration_items_in(item_ids: list[int]) -> Select[int]:
    return (select(Item.id).join(GoldAnswer, GoldAnswer.item_id == Item.id)
            .where(Item.id.in_(item_ids), Item.purpose == ItemPurpose.CALIBRATION))


def _pending(session: Session, attempt: CalibrationAttempt) -> list[int]:
    """Items of the attempt still to answer, in order; items withdrawn from the set meanwhile drop out."""
    answered = set(_answers(session, attempt.id))
    todo = [i for i in attempt.item_ids if i not in answered]
    live = _still_calibration(session, todo)
    return [i for i in todo if i in live]


def next_item(session: Session, *, project: Project, attempt: CalibrationAttempt,
              now: datetime | None = None) -> CalibrationItemOut | None:
    """The attempt's next item in SHOWN order, or None once every item is answered. An attempt whose
    remaining items were all withdrawn from the set meanwhile is finished here (at `now`)."""
    if attempt.finished_at is not None:
        return None
    pending = _pending(session, attempt)
    if not pending:
        _finish(session, attempt, now or attempt.started_at)
        return None
    return describe(session, project=project, attempt=attempt, item_id=pending[0])


def _swapped(item: Item, attempt: CalibrationAttempt) -> bool:
    """Only a pair has sides to swap: its own side for each annotator and attempt."""
    return item.kind == ItemKind.PAIR and policy.calibration_swapped(item.id, user_id=attempt.user_id,
                                                                     number=attempt.number)


def _item(session: Session, attempt: CalibrationAttempt, item_id: int) -> Item:
    item = session.scalar(select(Item).where(Item.id == item_id).options(
        joinedload(Item.prompt), joinedload(Item.candidate_a), joinedload(Item.candidate_b)))
    if item is None or item_id not in attempt.item_ids:
        raise NotFound("no such item in this calibration attempt", field="item_id")
    return item


def describe(session: Session, *, project: Project, attempt: CalibrationAttempt,
             item_id: int) -> CalibrationItemOut:
    item = _item(session, attempt, item_id)
    texts = {"a": item.candidate_a.text, "b": item.candidate_b.text if item.candidate_b else ""}
    shown: list[ShownSide] = [ShownSide(side="a", text=texts["b" if _swapped(item, attempt) else "a"])]
    if item.kind == ItemKind.PAIR:
        shown.append(ShownSide(side="b", text=texts["a" if _swapped(item, attempt) else "b"]))
    return CalibrationItemOut(
        attempt_id=attempt.id, item_id=item.id, position=attempt.item_ids.index(item.id) + 1,
        of=len(attempt.item_ids), kind="pair" if item.kind == ItemKind.PAIR else "single",
        prompt=[Turn(role=str(m.get("role", "user")), content=str(m.get("content", "")))
                for m in item.prompt.messages],
        responses=shown, attributes=[AttributeOut.model_validate(a) for a in project.attributes])


def _parse(item: Item, project: Project, data: CalibrationAnswerIn,
           swapped: bool) -> tuple[str | None, dict[str, int]]:
    """The canonical choice or the ratings; Invalid naming the field when the answer does not fit."""
    if item.kind == ItemKind.PAIR:
        if data.choice is None:
            raise Invalid("choose A, B, tie or both bad", field="choice")
        if data.ratings:
            raise Invalid("ratings are for Likert items; this item is a pair", field="ratings")
        return policy.to_canonical(data.choice, swapped), {}
    if data.choice is not None:
        raise Invalid("a Likert item takes ratings, not a choice", field="choice")
    missing = [n for n in project.attribute_names
               if not LIKERT_MIN <= data.ratings.get(n, 0) <= LIKERT_MAX]
    if missing or set(data.ratings) - set(project.attribute_names):
        name = (missing or sorted(set(data.ratings) - set(project.attribute_names)))[0]
        raise Invalid(f"{name}: choose a rating from 1 to 7 for every attribute", field=f"rating_{name}")
    return None, dict(data.ratings)


def answer(session: Session, *, project: Project, attempt_id: int, item_id: int, data: CalibrationAnswerIn,
           user: User, now: datetime) -> FeedbackOut:
    """Store the answer to one item of the attempt and return the feedback; answering the last item
    finishes the attempt. Idempotent: an item answered already returns its stored feedback. The attempt
    row is locked, so two submits of one item queue up."""
    attempt = get_attempt(session, project_id=project.id, attempt_id=attempt_id, user=user, lock=True)
    if attempt.user_id != user.id:
        raise PermissionDenied("only the annotator of an attempt answers it")
    stored = _answers(session, attempt.id).get(item_id)
    if stored is not None:
        return feedback(session, project=project, attempt=attempt, item_id=item_id)
    if attempt.finished_at is not None:
        raise Conflict("this calibration attempt is finished")
    if item_id not in _pending(session, attempt):
        raise Conflict("this item was withdrawn from the calibration set; go on with the next one",
                       field="item_id")
    item = _item(session, attempt, item_id)
    swapped = _swapped(item, attempt)
    choice, ratings = _parse(item, project, data, swapped)
    key = session.get(GoldAnswer, item_id)
    assert key is not None  # _pending keeps only items with an answer key
    correct = policy.answer_correct(key.choice, key.ranges, choice, ratings)
    session.add(CalibrationAnswer(attempt_id=attempt.id, item_id=item_id, choice=choice,
                                  strength=data.strength if choice in ("a", "b") else None, swapped=swapped,
                                  ratings=ratings, correct=correct, created_at=now))
    session.flush()
    if not _pending(session, attempt):
        _finish(session, attempt, now)
    return feedback(session, project=project, attempt=attempt, item_id=item_id)


def _finish(session: Session, attempt: CalibrationAttempt, now: datetime) -> None:
    answers = list(_answers(session, attempt.id).values())
    attempt.correct = sum(a.correct for a in answers)
    attempt.total = len(answers)
    attempt.passed = policy.passed(attempt.correct, attempt.total, attempt.pass_mark)
    attempt.finished_at = now
    session.flush()


def feedback(session: Session, *, project: Project, attempt: CalibrationAttempt, item_id: int) -> FeedbackOut:
    """What the annotator answered on an item of the attempt, against the expected answer (SHOWN sides)."""
    stored = _answers(session, attempt.id).get(item_id)
    if stored is None:
        raise NotFound("this item is not answered yet in this attempt", field="item_id")
    key = session.get(GoldAnswer, item_id)
    ranges: dict[str, Any] = key.ranges if key else {}
    expected = key.choice if key else None
    return FeedbackOut(
        item_id=item_id, correct=stored.correct,
        your_choice=policy.to_shown(stored.choice, stored.swapped) if stored.choice else None,
        your_ratings=dict(stored.ratings),
        expected_choice=policy.to_shown(expected, stored.swapped) if expected else None,
        expected_ranges={name: (low, high) for name, (low, high) in ranges.items()},
        explanation=key.explanation if key else "", attempt=summary(session, attempt))


def summary(session: Session, attempt: CalibrationAttempt, username: str = "") -> AttemptOut:
    answered = len(_answers(session, attempt.id))
    score = attempt.correct / attempt.total if attempt.finished_at is not None and attempt.total else None
    return AttemptOut(
        id=attempt.id, user_id=attempt.user_id, username=username, number=attempt.number,
        started_at=attempt.started_at, finished_at=attempt.finished_at, answered=answered,
        of=answered + len(_pending(session, attempt)) if attempt.finished_at is None else answered,
        correct=attempt.correct, total=attempt.total, score=score, pass_mark=attempt.pass_mark,
        passed=attempt.passed, retries_left=attempt.retries_left)


def attempts(session: Session, *, project_id: int, user_id: int | None = None) -> list[AttemptDetailOut]:
    """Every attempt in the project (or one annotator's), newest first, with each answer."""
    query = (select(CalibrationAttempt, User.username).join(User, User.id == CalibrationAttempt.user_id)
             .where(CalibrationAttempt.project_id == project_id).order_by(CalibrationAttempt.id.desc()))
    if user_id is not None:
        query = query.where(CalibrationAttempt.user_id == user_id)
    result = []
    for attempt, username in session.execute(query).all():
        answers = [AttemptAnswerOut(
            item_id=a.item_id, choice=a.choice,
            shown_choice=policy.to_shown(a.choice, a.swapped) if a.choice else None,
            strength=a.strength, swapped=a.swapped, ratings=dict(a.ratings), correct=a.correct,
            created_at=a.created_at) for a in _answers(session, attempt.id).values()]
        result.append(AttemptDetailOut(**summary(session, attempt, username).model_dump(), answers=answers))
    return result
