"""The API's lean path (app/annotation/lean.py) and the general path give the same answers and rows.

A bearer token takes the lean path; the same requests with a session cookie take the general one. One
annotator works through two projects made alike, one each way: gold and repeat draws depend only on the
annotator and how much they have judged, so both projects see the same draws.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.annotation import service as annotation_service
from app.annotation.models import Judgement, Rating
from app.assignment import policy
from app.assignment.models import Lease
from app.db import utcnow
from app.guidelines import service as guidelines_service
from app.projects.models import Item, Mode, Project
from app.web.csrf import HEADER
from tests.factories import (
    bearer,
    login,
    make_gold,
    make_guideline_version,
    make_pair_item,
    make_project,
    make_single_item,
    make_user,
    make_user_without_password,
)

N_ITEMS = 10


def _twin_projects(db: Session, annotator: Any, **fields: Any) -> tuple[Project, Project]:
    twins = []
    for _ in range(2):
        project = make_project(db, overlap_k=2, members=[annotator], **fields)
        for n in range(N_ITEMS):
            make_pair_item(db, project, text=f"prompt {n}", a=f"good {n}", b=f"bad {n}")
        twins.append(project)
    db.flush()
    return twins[0], twins[1]


def _work(client: TestClient, project: Project, headers: dict[str, str],
          rounds: int) -> list[tuple[Any, ...]]:
    """Next -> judgement `rounds` times, always preferring the "good" response; what each step showed."""
    seen = []
    base = f"/api/v1/projects/{project.id}"
    for _ in range(rounds):
        got = client.get(f"{base}/next", headers=headers)
        if got.status_code == 204:
            seen.append(("nothing left",))
            continue
        assert got.status_code == 200, got.text
        item = got.json()
        again = client.get(f"{base}/next", headers=headers)  # a reload shows the same lease
        assert again.json()["lease_id"] == item["lease_id"]
        shown = [r["text"] for r in item["responses"]]
        choice = "a" if shown[0].startswith("good") else "b"
        body = {"choice": choice, "strength": 2, "seconds": 9.5, "idempotency_key": item["idempotency_key"],
                "flags": ["unsafe", "unsafe"], "rationale": "good is better"}
        sent = client.post(f"{base}/leases/{item['lease_id']}/judgement", json=body, headers=headers)
        assert sent.status_code == 201, sent.text
        stored = sent.json()
        repeat = client.post(f"{base}/leases/{item['lease_id']}/judgement", json=body, headers=headers)
        assert repeat.status_code == 200 and repeat.json() == stored  # idempotent
        assert stored["choice"] == "a" and stored["shown_choice"] == choice
        seen.append((item["prompt"][0]["content"], stored["choice"], stored["flags"], stored["strength"]))
    return seen


def _rows(db: Session, project: Project) -> list[tuple[Any, ...]]:
    """Every lease and judgement of the project, items by position (their ids, and so the sides shown,
    differ between the twins)."""
    db.expire_all()
    rows = db.execute(
        select(Item.id, Item.open_slots, Item.judgement_count, Lease.is_repeat, Lease.takes_slot,
               Lease.swapped == Judgement.swapped, Lease.completed_at.is_not(None), Judgement.choice,
               Judgement.strength, Judgement.rationale, Judgement.flags, Judgement.seconds,
               Judgement.guideline_version_id.is_not(None))
        .join(Lease, Lease.item_id == Item.id).outerjoin(Judgement, Judgement.lease_id == Lease.id)
        .where(Item.project_id == project.id).order_by(Lease.id)).all()
    position = {item_id: n for n, item_id in enumerate(db.scalars(
        select(Item.id).where(Item.project_id == project.id).order_by(Item.id)))}
    return [(position[row[0]], *row[1:]) for row in rows]


def test_lean_and_general_paths_agree(db: Session, app_client: TestClient) -> None:
    admin = make_user(db, Role.ADMIN)
    annotator = make_user(db)
    # Draws depend on the annotator id, which depends on the tests before: rates high enough that repeats
    # surely come (each judgement after the fifth), and gold draws too (no gold item: regular work)
    lean_project, general_project = _twin_projects(db, annotator, gold_rate=0.15, repeat_rate=0.8)
    for project in (lean_project, general_project):  # a version in force, recorded on each judgement
        version = make_guideline_version(db, project, admin)
        guidelines_service.acknowledge(db, project_id=project.id, version_id=version.id, user=annotator,
                                       now=utcnow())
    db.flush()
    token = bearer(db, annotator)
    lean_steps = _work(app_client, lean_project, token, rounds=24)
    csrf = login(app_client, db, annotator)
    general_steps = _work(app_client, general_project, {HEADER: csrf}, rounds=24)
    app_client.cookies.clear()

    assert lean_steps == general_steps
    assert ("nothing left",) in lean_steps  # every item judged; the repeats came on top
    lean_rows, general_rows = _rows(db, lean_project), _rows(db, general_project)
    assert [row[1:] for row in lean_rows if not row[3]] == [row[1:] for row in general_rows if not row[3]]
    assert sum(row[3] for row in lean_rows) == sum(row[3] for row in general_rows) > 0  # repeats happened
    assert [row[0] for row in lean_rows] == [row[0] for row in general_rows]
    for row in lean_rows:
        assert row[5] and row[6] and row[7] == "a" and row[10] == ["unsafe"] and row[12]
    leases = db.scalars(select(Lease).where(Lease.project_id == lean_project.id)).all()
    firsts = {lease.item_id: lease for lease in leases if not lease.is_repeat}
    assert all(lease.swapped == policy.swap_sides(lease.item_id, annotator.id) for lease in firsts.values())
    for lease in leases:
        if lease.is_repeat:  # sides swapped against the first time, no slot taken
            assert lease.swapped != firsts[lease.item_id].swapped and not lease.takes_slot


def test_lean_path_likert(db: Session, app_client: TestClient) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, mode=Mode.LIKERT, overlap_k=1, members=[annotator])
    make_single_item(db, project, body="A response.")
    headers = bearer(db, annotator)
    item = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers).json()
    url = f"/api/v1/projects/{project.id}/leases/{item['lease_id']}/judgement"
    missing = app_client.post(url, json={"ratings": {"helpfulness": 5}, "idempotency_key": "k" * 10},
                              headers=headers)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["rating_correctness"]
    stored = app_client.post(url, json={"ratings": {"helpfulness": 5, "correctness": 7},
                                        "idempotency_key": "k" * 10}, headers=headers)
    assert stored.status_code == 201, stored.text
    assert stored.json()["ratings"] == {"helpfulness": 5, "correctness": 7}
    judgement = db.scalars(select(Judgement).where(Judgement.project_id == project.id)).one()
    ratings = db.execute(select(Rating.attribute, Rating.value).where(Rating.judgement_id == judgement.id))
    assert {name: value for name, value in ratings} == {"helpfulness": 5, "correctness": 7}
    assert app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers).status_code == 204


@pytest.mark.parametrize("case", ["other annotator", "other project", "gold", "released", "skipped"])
def test_lean_path_leaves_the_unusual_to_the_general_path(db: Session, app_client: TestClient,
                                                          case: str) -> None:
    annotator, other = make_user_without_password(db), make_user_without_password(db)
    project = make_project(db, overlap_k=2, members=[annotator, other], gold_rate=0.0)
    elsewhere = make_project(db, members=[annotator])
    item = make_pair_item(db, project)
    if case == "gold":
        make_gold(db, item, "a")
        db.execute(Project.__table__.update().where(Project.id == project.id).values(gold_rate=1.0))
    headers = bearer(db, annotator)
    got = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assert got.status_code == 200, got.text
    lease_id, key = got.json()["lease_id"], got.json()["idempotency_key"]
    url = f"/api/v1/projects/{project.id}/leases/{lease_id}/judgement"
    body = {"choice": "a", "strength": 1, "idempotency_key": key}
    expected = {"other annotator": 403, "other project": 404, "gold": 201, "released": 409, "skipped": 200}
    if case == "other annotator":
        headers = bearer(db, other)
    elif case == "other project":
        url = f"/api/v1/projects/{elsewhere.id}/leases/{lease_id}/judgement"
    elif case == "released":
        db.execute(Lease.__table__.delete().where(Lease.id == lease_id))
    elif case == "skipped":
        annotation_service.skip(db, lease_id=lease_id, annotator=annotator, now=utcnow())
        db.flush()
    sent = app_client.post(url, json=body, headers=headers)
    if case == "skipped":
        assert sent.status_code == 409 and "skipped" in sent.json()["detail"]
        return
    assert sent.status_code == expected[case], sent.text
    judgements = db.scalars(select(Judgement).where(Judgement.project_id == project.id)).all()
    assert len(judgements) == (1 if case == "gold" else 0)
