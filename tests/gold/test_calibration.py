"""Calibration over HTTP: the gate, feedback after each item, fail -> retry -> pass, blocked, grants."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.assignment.models import Lease
from app.gold.models import CalibrationAnswer, CalibrationAttempt
from app.projects.models import Item, ItemPurpose, Mode, Project
from tests.factories import (
    bearer,
    login,
    make_gold,
    make_pair_item,
    make_project,
    make_single_item,
    make_user,
    make_user_without_password,
)

HTMX = {"HX-Request": "true"}
EXPLANATION = "The right answer **names** a colour."


def _setup(db: Session, *, retries: int = 1, calibration_items: int = 3) -> tuple[Project, list[Item]]:
    project = make_project(db, overlap_k=1, calibration_pass=0.8, calibration_retries=retries)
    for n in range(2):
        make_pair_item(db, project, text=f"regular work {n}")
    items = []
    for n in range(calibration_items):
        item = make_pair_item(db, project, text=f"calibration {n}", a=f"RIGHT {n}", b=f"WRONG {n}")
        make_gold(db, item, "a", purpose="calibration", explanation=EXPLANATION)
        items.append(item)
    return project, items


def _member(db: Session, project: Project, user: User) -> User:
    from app.projects.models import ProjectMember

    db.add(ProjectMember(project_id=project.id, user_id=user.id))
    db.flush()
    return user


def _answer_page(client: TestClient, html: str, csrf: str, *, right: bool) -> str:
    """Answer the calibration item on the page: the side showing RIGHT (or the other one)."""
    action = re.search(r'action="([^"]*/calibration/\d+/items/\d+)"', html)
    assert action, "the page shows a calibration item with its form"
    sides = dict(re.findall(r'data-side="(a|b)"[^>]*>.*?<p>(RIGHT|WRONG) \d+</p>', html, re.S))
    chosen = next(side for side, text in sides.items() if (text == "RIGHT") == right)
    response = client.post(action.group(1), data={"csrf_token": csrf, "choice": chosen, "strength": "2"})
    assert response.status_code == 200
    return response.text


def _run_attempt(client: TestClient, project: Project, csrf: str, answers: list[bool]) -> str:
    """From the workspace: follow the redirect into the attempt and answer each item in turn."""
    redirect = client.get(f"/projects/{project.id}/annotate")
    assert redirect.status_code == 303 and "/calibration/" in redirect.headers["location"]
    url = redirect.headers["location"]
    text = ""
    for right in answers:
        text = _answer_page(client, client.get(url).text, csrf, right=right)
        assert "Expected" in text and "<strong>names</strong>" in text, "feedback: expected answer + why"
        assert ("Correct" in text) == right
    return client.get(url).text


def test_fail_retry_pass_then_real_work(app_client: TestClient, db: Session) -> None:
    project, calibration_items = _setup(db, retries=1)
    annotator = _member(db, project, make_user(db))
    csrf = login(app_client, db, annotator)
    failed = _run_attempt(app_client, project, csrf, [False, True, True])
    assert "Calibration not passed" in failed and "2 of 3" in failed and "1 more attempt" in failed
    passed = _run_attempt(app_client, project, csrf, [True, True, True])
    assert "Calibration passed" in passed
    workspace = app_client.get(f"/projects/{project.id}/annotate")
    assert workspace.status_code == 200 and "regular work" in workspace.text
    attempts = db.scalars(select(CalibrationAttempt).order_by(CalibrationAttempt.number)).all()
    assert [(a.number, a.correct, a.total, a.passed) for a in attempts] == [(1, 2, 3, False), (2, 3, 3, True)]
    assert db.scalar(select(func.count(CalibrationAnswer.id))) == 6
    served = re.search(r"/leases/(\d+)", workspace.text)
    assert served is not None
    lease = db.get(Lease, int(served.group(1)))
    assert lease is not None and lease.item_id not in {i.id for i in calibration_items}
    assert db.get(Item, lease.item_id).purpose == ItemPurpose.REGULAR  # type: ignore[union-attr]


def test_out_of_retries_is_blocked_until_an_admin_grants_an_attempt(app_client: TestClient,
                                                                   db: Session) -> None:
    project, _ = _setup(db, retries=0, calibration_items=2)
    annotator = _member(db, project, make_user(db))
    admin = make_user(db, Role.ADMIN)
    csrf = login(app_client, db, annotator)
    result = _run_attempt(app_client, project, csrf, [False, False])
    assert "last attempt" in result
    blocked = app_client.get(f"/projects/{project.id}/annotate")
    assert blocked.status_code == 403 and "blocked:" in blocked.text and "grant" in blocked.text
    api = app_client.get(f"/api/v1/projects/{project.id}/next", headers=bearer(db, annotator))
    assert api.status_code == 403 and api.json()["status"] == "blocked"
    admin_csrf = login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/annotators")
    assert "blocked" in page.text and "Grant another calibration attempt" in page.text
    granted = app_client.post(f"/projects/{project.id}/annotators/{annotator.id}/grant",
                              data={"csrf_token": admin_csrf})
    assert granted.status_code == 303
    csrf = login(app_client, db, annotator)
    again = _run_attempt(app_client, project, csrf, [True, True])
    assert "Calibration passed" in again
    assert app_client.get(f"/projects/{project.id}/annotate").status_code == 200


def test_admins_see_every_attempt_with_each_answer(app_client: TestClient, db: Session) -> None:
    project, _ = _setup(db, calibration_items=2)
    first, second = (_member(db, project, make_user(db)) for _ in range(2))
    for user, answers in ((first, [True, False]), (second, [True, True])):
        _run_attempt(app_client, project, login(app_client, db, user), answers)
    admin = make_user_without_password(db, Role.ADMIN)
    listed = app_client.get(f"/api/v1/projects/{project.id}/calibration/attempts", headers=bearer(db, admin))
    assert listed.status_code == 200
    by_user = {a["username"]: a for a in listed.json()}
    assert by_user[first.username]["score"] == 0.5 and by_user[first.username]["passed"] is False
    assert [x["correct"] for x in by_user[first.username]["answers"]] == [True, False]
    assert by_user[second.username]["passed"] is True and len(by_user[second.username]["answers"]) == 2
    login(app_client, db, make_user(db, Role.ADMIN))
    page = app_client.get(f"/projects/{project.id}/calibration")
    assert page.status_code == 200 and first.username in page.text and "1/2" in page.text
    login(app_client, db, first)
    assert app_client.get(f"/projects/{project.id}/calibration").status_code == 403
    assert app_client.get(f"/api/v1/projects/{project.id}/calibration/attempts",
                          headers=bearer(db, first)).status_code == 403


def test_the_calibration_api_flow_shows_the_expected_answer_on_the_shown_sides(app_client: TestClient,
                                                                              db: Session) -> None:
    project, _ = _setup(db, calibration_items=2)
    annotator = _member(db, project, make_user_without_password(db))
    auth = bearer(db, annotator)
    gate = app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth)
    assert gate.status_code == 403 and gate.json()["status"] == "calibration"
    attempt_id = gate.json()["calibration_attempt_id"]
    assert app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth).json()[
        "calibration_attempt_id"] == attempt_id, "a reload never starts a second attempt"
    base = f"/api/v1/projects/{project.id}/calibration/attempts/{attempt_id}"
    while (item := app_client.get(f"{base}/next", headers=auth)).status_code == 200:
        body = item.json()
        right = next(r["side"] for r in body["responses"] if r["text"].startswith("RIGHT"))
        url = f"{base}/items/{body['item_id']}"
        assert app_client.post(url, json={}, headers=auth).status_code == 422, "a pair needs a choice"
        feedback = app_client.post(url, json={"choice": right}, headers=auth)
        assert feedback.status_code == 200
        assert feedback.json()["correct"] is True and feedback.json()["expected_choice"] == right
        assert feedback.json()["explanation"] == EXPLANATION
        assert app_client.post(url, json={"choice": "tie"}, headers=auth).json() == feedback.json(), \
            "answering again returns the stored feedback"
    assert item.status_code == 204
    assert feedback.json()["attempt"]["passed"] is True
    assert db.scalar(select(func.count(CalibrationAnswer.id))) == 2
    assert app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth).status_code == 200
    stranger = make_user_without_password(db)
    assert app_client.get(f"{base}/next", headers=bearer(db, stranger)).status_code == 403


def test_an_invalid_calibration_answer_shows_the_item_again_and_stores_nothing(app_client: TestClient,
                                                                              db: Session) -> None:
    project, _ = _setup(db, calibration_items=1)
    annotator = _member(db, project, make_user(db))
    csrf = login(app_client, db, annotator)
    url = app_client.get(f"/projects/{project.id}/annotate").headers["location"]
    page = app_client.get(url, headers=HTMX)
    assert page.text.lstrip().startswith('<div id="calibration"')
    action = re.search(r'action="([^"]*/items/\d+)"', page.text)
    assert action is not None
    bad = app_client.post(action.group(1), data={"csrf_token": csrf}, headers=HTMX)
    assert bad.status_code == 422 and "choose A, B, tie or both bad" in bad.text and "RIGHT 0" in bad.text
    assert db.scalar(select(func.count(CalibrationAnswer.id))) == 0


def test_likert_calibration_is_scored_against_the_ranges(app_client: TestClient, db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, mode=Mode.LIKERT, members=[annotator], calibration_pass=1.0)
    make_gold(db, make_single_item(db, project, text="rate me"), purpose="calibration",
              ranges={"helpfulness": (5, 7)}, explanation="Helpful.")
    auth = bearer(db, annotator)
    attempt_id = app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth).json()[
        "calibration_attempt_id"]
    base = f"/api/v1/projects/{project.id}/calibration/attempts/{attempt_id}"
    item = app_client.get(f"{base}/next", headers=auth).json()
    assert [a["name"] for a in item["attributes"]] == ["helpfulness", "correctness"]
    url = f"{base}/items/{item['item_id']}"
    missing = app_client.post(url, json={"ratings": {"helpfulness": 6}}, headers=auth)
    assert missing.status_code == 422 and "correctness" in missing.json()["detail"]
    ratings = {"ratings": {"helpfulness": 4, "correctness": 7}}
    feedback = app_client.post(url, json=ratings, headers=auth).json()
    assert feedback["correct"] is False and feedback["expected_ranges"] == {"helpfulness": [5, 7]}
    assert feedback["attempt"]["passed"] is False
