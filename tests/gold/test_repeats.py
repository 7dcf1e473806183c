"""Self-consistency repeats: an item judged before comes back with the sides swapped, is stored as a
repeat, and never counts twice (item completion, exports)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.models import Judgement
from app.annotation.schemas import JudgementIn
from app.assignment import policy
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.db import utcnow
from app.export import service as export_service
from app.projects import service as projects_service
from app.projects.models import Item, Mode, Project
from tests.factories import (
    bearer,
    make_pair_item,
    make_project,
    make_single_item,
    make_user_without_password,
)

ITEMS = 16


def _judge_all(db: Session, project: Project, annotator: User, repeat_answer: str = "a") -> list[Lease]:
    """Claim and judge until nothing is left: originals as canonical "a", repeats as `repeat_answer`."""
    leases = []
    while (lease := assignment_service.claim_next_item(db, project=project, annotator=annotator,
                                                       now=utcnow())) is not None:
        canonical = repeat_answer if lease.is_repeat else "a"
        form = JudgementIn(choice=policy.to_shown(canonical, lease.swapped), strength=2)  # type: ignore[arg-type]
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow())
        leases.append(lease)
    return leases


def test_repeats_come_later_with_sides_swapped_and_never_count_on_the_item(db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, overlap_k=2, members=[annotator], repeat_rate=0.5, gold_rate=0.0)
    items = [make_pair_item(db, project, text=f"prompt {n}") for n in range(ITEMS)]
    leases = _judge_all(db, project, annotator)
    originals = {lease.item_id: (n, lease) for n, lease in enumerate(leases) if not lease.is_repeat}
    repeats = [(n, lease) for n, lease in enumerate(leases) if lease.is_repeat]
    assert len(originals) == ITEMS and repeats, "the 0.5 rate brings repeats within 16 items"
    for n, repeat in repeats:
        first_n, original = originals[repeat.item_id]
        assert n - first_n > assignment_service.REPEAT_GAP - 1, "not straight after the original"
        assert repeat.swapped is not original.swapped
        assert not repeat.takes_slot
    assert len({lease.item_id for _, lease in repeats}) == len(repeats), "each item repeated at most once"
    judgements = db.scalars(select(Judgement).where(Judgement.project_id == project.id)).all()
    assert sorted(j.lease_id for j in judgements if j.is_repeat) == sorted(lease.id for _, lease in repeats)
    for item in items:
        db.refresh(item)
        assert (item.judgement_count, item.open_slots) == (1, 1), "a repeat never completes an item"
    assert projects_service.project_stats(db, project.id)["judgements"] == ITEMS


def test_repeats_stay_out_of_exports(db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, overlap_k=1, members=[annotator], repeat_rate=0.5, gold_rate=0.0)
    for n in range(ITEMS):
        make_pair_item(db, project, text=f"prompt {n}")
    leases = _judge_all(db, project, annotator, repeat_answer="b")
    assert len(leases) > ITEMS
    raw = "".join(export_service.stream_export(db, project_id=project.id, fmt="raw", secret="s"))
    assert len(raw.splitlines()) == ITEMS
    trl = [json.loads(line) for line in "".join(
        export_service.stream_export(db, project_id=project.id, fmt="trl")).splitlines()]
    assert len(trl) == ITEMS, "the contradicting repeat does not split the vote"
    assert export_service.export_summary(db, project_id=project.id).judgements == ITEMS


def test_self_consistency_counts_repeats_that_agree_with_the_original(db: Session) -> None:
    steady, fickle = make_user_without_password(db), make_user_without_password(db)
    project = make_project(db, overlap_k=2, members=[steady, fickle], repeat_rate=0.5, gold_rate=0.0)
    for n in range(ITEMS):
        make_pair_item(db, project, text=f"prompt {n}")
    steady_repeats = sum(lease.is_repeat for lease in _judge_all(db, project, steady, repeat_answer="a"))
    fickle_repeats = sum(lease.is_repeat for lease in _judge_all(db, project, fickle, repeat_answer="b"))
    result = annotation_service.self_consistency(db, project_id=project.id)
    assert result == {steady.id: (steady_repeats, steady_repeats), fickle.id: (0, fickle_repeats)}


def test_likert_repeats_are_consistent_within_one_point(db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, mode=Mode.LIKERT, overlap_k=1, members=[annotator], repeat_rate=0.5,
                           gold_rate=0.0)
    for n in range(ITEMS):
        make_single_item(db, project, text=f"prompt {n}")
    repeats = 0
    while (lease := assignment_service.claim_next_item(db, project=project, annotator=annotator,
                                                       now=utcnow())) is not None:
        assert not lease.swapped, "a single has no sides"
        close = repeats % 2 == 0
        value = (5 if close else 7) if lease.is_repeat else 4
        repeats += lease.is_repeat
        form = JudgementIn(ratings={"helpfulness": value, "correctness": 4})
        annotation_service.submit(db, lease_id=lease.id, annotator=annotator, form=form, now=utcnow())
    assert repeats >= 2
    assert annotation_service.self_consistency(db, project_id=project.id) == {
        annotator.id: ((repeats + 1) // 2, repeats)}


def test_the_api_shows_a_repeat_with_the_responses_in_the_other_order(app_client: TestClient,
                                                                      db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, overlap_k=1, members=[annotator], repeat_rate=0.5, gold_rate=0.0)
    for n in range(ITEMS):
        make_pair_item(db, project, text=f"prompt {n}", a=f"first {n}", b=f"second {n}")
    auth = bearer(db, annotator)
    shown: dict[int, list[str]] = {}
    repeated = 0
    while (item := app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth)).status_code == 200:
        body = item.json()
        order = [r["text"] for r in body["responses"]]
        if body["item_id"] in shown:
            assert order == list(reversed(shown[body["item_id"]]))
            repeated += 1
        shown[body["item_id"]] = order
        vote = {"choice": "a", "strength": 1, "idempotency_key": body["idempotency_key"]}
        assert app_client.post(f"/api/v1/projects/{project.id}/leases/{body['lease_id']}/judgement",
                               json=vote, headers=auth).status_code == 201
    assert item.status_code == 204 and repeated > 0
    assert {i.judgement_count for i in db.scalars(select(Item).where(Item.project_id == project.id))} == {1}
