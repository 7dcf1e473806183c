"""The fast lane (app/annotation/fastlane.py) answers only what the lean path answers; everything else
reaches the FastAPI route with its body intact and gets the route's answer."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.annotation.models import Judgement
from app.web.csrf import HEADER
from tests.factories import (
    bearer,
    login,
    make_guideline_version,
    make_pair_item,
    make_project,
    make_user,
    make_user_without_password,
)


def _judgements(db: Session) -> int:
    return db.scalar(select(func.count(Judgement.id))) or 0


def test_the_lane_answers_with_the_security_headers(db: Session, app_client: TestClient) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    headers = bearer(db, annotator)
    got = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    assert "frame-ancestors 'none'" in got.headers["content-security-policy"]
    item = got.json()
    sent = app_client.post(f"/api/v1/projects/{project.id}/leases/{item['lease_id']}/judgement",
                           json={"choice": "b", "strength": 3, "idempotency_key": item["idempotency_key"]},
                           headers=headers)
    assert sent.status_code == 201 and sent.json()["shown_choice"] == "b"
    assert sent.headers["x-frame-options"] == "DENY"


def test_a_malformed_body_gets_the_routes_422_and_stores_nothing(db: Session, app_client: TestClient) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    headers = bearer(db, annotator)
    item = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers).json()
    url = f"/api/v1/projects/{project.id}/leases/{item['lease_id']}/judgement"
    for body, field in (({"choice": "left", "idempotency_key": "k" * 10}, "choice"),
                        ({"choice": "a", "strength": 9, "idempotency_key": "k" * 10}, "strength"),
                        ({"choice": "a", "idempotency_key": "k" * 10}, "strength")):  # the service's check
        sent = app_client.post(url, json=body, headers=headers)
        assert sent.status_code == 422, sent.text
        assert field in [e["field"] for e in sent.json()["errors"]]
    broken = app_client.post(url, content=b"{not json",
                             headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 422
    assert _judgements(db) == 0


def test_what_the_lane_declines_gets_the_general_paths_answer(db: Session, app_client: TestClient) -> None:
    admin, annotator = make_user(db, Role.ADMIN), make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    make_guideline_version(db, project, admin)  # to acknowledge first
    headers = bearer(db, annotator)
    gated = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assert gated.status_code == 409 and gated.json()["guideline_version"]["number"] == 1
    unknown = app_client.get(f"/api/v1/projects/{project.id}/next", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    outsider = make_user_without_password(db)
    assert app_client.get(f"/api/v1/projects/{project.id}/next",
                          headers=bearer(db, outsider)).status_code == 403
    csrf = login(app_client, db, annotator)  # a cookie: never the lane, always the route
    assert app_client.get(f"/api/v1/projects/{project.id}/next", headers={HEADER: csrf}).status_code == 409
    assert app_client.get(f"/api/v1/projects/{project.id}/next").status_code == 409
    app_client.cookies.clear()
    assert _judgements(db) == 0
