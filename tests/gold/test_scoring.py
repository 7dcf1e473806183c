"""Gold judgements scored on submit, accuracy kept, automatic pause below the bar, resume."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.db import utcnow
from app.gold import service as gold_service
from app.gold.models import GoldScore
from app.gold.schemas import GoldAnswerIn
from app.projects.models import Mode, Project
from tests.factories import (
    make_gold,
    make_pair_item,
    make_project,
    make_single_item,
    make_user_without_password,
)
from tests.gold.support import judge_next


def _gold_project(db: Session, gold_items: int = 12, **settings: object) -> tuple[Project, User]:
    annotator = make_user_without_password(db)
    project = make_project(db, overlap_k=1, members=[annotator], gold_rate=0.5,
                           **{"gold_min": 5, "gold_window": 10, "gold_bar": 0.7, **settings})
    for n in range(gold_items):  # only gold: every claim serves one
        make_gold(db, make_pair_item(db, project, text=f"gold {n}"), "a")
    return project, annotator


def _status(db: Session, project: Project, user_id: int) -> gold_service.Standing:
    return gold_service.standings(db, project_id=project.id)[user_id]


def _audit(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_gold_accuracy_is_kept_per_annotator(db: Session) -> None:
    project, annotator = _gold_project(db)
    for canonical in ("a", "a", "tie", "a", "a"):
        assert judge_next(db, project, annotator, canonical) is not None
    standing = _status(db, project, annotator.id)
    assert (standing.gold_correct, standing.gold_total) == (4, 5)
    assert standing.gold_accuracy == 0.8 and standing.recent_accuracy == 0.8 and standing.status == "active"


def test_an_annotator_is_paused_automatically_only_after_the_minimum(db: Session) -> None:
    project, annotator = _gold_project(db)
    for _ in range(4):
        judge_next(db, project, annotator, "b")
    assert _status(db, project, annotator.id).status == "active", "4 wrong < gold_min 5"
    assert gold_service.gate(db, project=project, user_id=annotator.id, required_since=None,
                             now=utcnow()) is None
    judge_next(db, project, annotator, "b")
    standing = _status(db, project, annotator.id)
    assert standing.status == "paused" and standing.changed_by_id is None
    assert "0%" in standing.reason and "70%" in standing.reason
    gate = gold_service.gate(db, project=project, user_id=annotator.id, required_since=None, now=utcnow())
    assert gate is not None and gate.status == "paused" and gate.detail == f"paused: {standing.reason}"
    [event] = _audit(db, "annotator.pause")
    assert event.actor_id is None and event.after is not None and event.after["user_id"] == annotator.id


def test_accuracy_at_the_bar_keeps_an_annotator_working(db: Session) -> None:
    project, annotator = _gold_project(db)
    for canonical in ["a"] * 7 + ["b"] * 3:
        judge_next(db, project, annotator, canonical)
    assert _status(db, project, annotator.id).status == "active"
    judge_next(db, project, annotator, "b")  # the window: 6 of the last 10
    assert _status(db, project, annotator.id).status == "paused"


def test_resume_restarts_the_window_so_old_misses_cannot_pause_again(db: Session) -> None:
    project, annotator = _gold_project(db, gold_items=14)
    admin = make_user_without_password(db)
    for _ in range(5):
        judge_next(db, project, annotator, "b")
    assert _status(db, project, annotator.id).status == "paused"
    gold_service.resume(db, project=project, user_id=annotator.id, actor=admin, now=utcnow())
    standing = _status(db, project, annotator.id)
    assert standing.status == "active" and standing.reason == "" and standing.changed_by_id == admin.id
    assert (standing.recent_total, standing.gold_total) == (0, 5)
    [event] = _audit(db, "annotator.resume")
    assert event.actor_id == admin.id
    for _ in range(4):
        judge_next(db, project, annotator, "b")
    assert _status(db, project, annotator.id).status == "active", "4 new misses < gold_min"
    judge_next(db, project, annotator, "b")
    assert _status(db, project, annotator.id).status == "paused"
    assert len(_audit(db, "annotator.pause")) == 2


def test_repeated_resume_and_pause_change_nothing_twice(db: Session) -> None:
    project, annotator = _gold_project(db, gold_items=1)
    admin = make_user_without_password(db)
    gold_service.resume(db, project=project, user_id=annotator.id, actor=admin, now=utcnow())
    assert _audit(db, "annotator.resume") == []
    for _ in range(2):
        gold_service.pause(db, project=project, user_id=annotator.id, reason="rushing", actor=admin,
                           now=utcnow())
    assert len(_audit(db, "annotator.pause")) == 1
    assert _status(db, project, annotator.id).reason == "rushing"


def test_likert_gold_is_scored_against_its_ranges(db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, mode=Mode.LIKERT, overlap_k=1, members=[annotator], gold_rate=0.5)
    for n in range(2):
        make_gold(db, make_single_item(db, project, text=f"s{n}"), ranges={"helpfulness": (5, 7)})
    judge_next(db, project, annotator, ratings={"helpfulness": 6, "correctness": 1})
    judge_next(db, project, annotator, ratings={"helpfulness": 4, "correctness": 7})
    standing = _status(db, project, annotator.id)
    assert (standing.gold_correct, standing.gold_total) == (1, 2)


def test_a_changed_answer_key_rescores_and_unmarking_drops_the_scores(db: Session) -> None:
    project, annotator = _gold_project(db, gold_items=0)
    admin = make_user_without_password(db)
    item = make_pair_item(db, project)
    make_gold(db, item, "a")
    judge_next(db, project, annotator, "b")
    assert _status(db, project, annotator.id).gold_correct == 0
    gold_service.mark(db, project=project, item_id=item.id, data=GoldAnswerIn(purpose="gold", choice="b"),
                      actor=admin, now=utcnow())
    assert _status(db, project, annotator.id).gold_correct == 1
    gold_service.unmark(db, project=project, item_id=item.id, actor=admin)
    assert db.scalars(select(GoldScore).where(GoldScore.item_id == item.id)).all() == []
    assert [e.before["purpose"] for e in _audit(db, "gold.unmark")] == ["gold"]


def test_a_repeat_on_gold_or_a_resubmit_is_scored_once(db: Session) -> None:
    project, annotator = _gold_project(db, gold_items=1)
    done = judge_next(db, project, annotator, "a")
    assert done is not None
    item_id = done.item_id
    again = gold_service.score_gold(db, project=project, item_id=item_id, annotator_id=annotator.id,
                                    choice="b", ratings={}, now=utcnow())
    assert again is False
    scores = db.scalars(select(GoldScore).where(GoldScore.item_id == item_id)).all()
    assert [s.correct for s in scores] == [True], "the first score stands"
