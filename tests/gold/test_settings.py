"""The project's quality settings: gold rate and bar, window, minimum, repeat rate, calibration."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.audit.models import AuditEvent
from tests.factories import bearer, login, make_project, make_user, make_user_without_password

QUALITY = {"gold_rate": 0.2, "gold_bar": 0.8, "gold_window": 20, "gold_min": 8, "repeat_rate": 0.1,
           "calibration_pass": 0.9, "calibration_retries": 1}


def test_new_projects_get_the_documented_defaults(app_client: TestClient, db: Session) -> None:
    auth = bearer(db, make_user_without_password(db, Role.ADMIN))
    created = app_client.post("/api/v1/projects", json={"name": "q", "mode": "pairwise"}, headers=auth)
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in QUALITY} == {
        "gold_rate": 0.1, "gold_bar": 0.7, "gold_window": 10, "gold_min": 5, "repeat_rate": 0.05,
        "calibration_pass": 0.8, "calibration_retries": 2}


def test_quality_settings_change_over_the_api_with_an_audit_trail(app_client: TestClient,
                                                                  db: Session) -> None:
    auth = bearer(db, make_user_without_password(db, Role.ADMIN))
    project = make_project(db)
    bad = app_client.patch(f"/api/v1/projects/{project.id}", json={"gold_rate": 0.9}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "gold_rate"
    changed = app_client.patch(f"/api/v1/projects/{project.id}", json=QUALITY, headers=auth)
    assert changed.status_code == 200 and {k: changed.json()[k] for k in QUALITY} == QUALITY
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "project.update"))
    assert event is not None and event.after == QUALITY and event.before["gold_bar"] == 0.7  # type: ignore[index]


def test_quality_settings_in_the_browser_form(app_client: TestClient, db: Session) -> None:
    token = login(app_client, db, make_user(db, Role.ADMIN))
    project = make_project(db, name="quality form")
    page = app_client.get(f"/projects/{project.id}/edit")
    assert page.status_code == 200 and 'name="gold_bar" value="0.7"' in page.text
    form = {"csrf_token": token, "name": "quality form", "overlap_k": "2", "lease_minutes": "30",
            "candidates_per_prompt": "2", **{k: str(v) for k, v in QUALITY.items()}}
    bad = app_client.post(f"/projects/{project.id}/edit", data={**form, "calibration_pass": "2"})
    assert bad.status_code == 422 and 'id="calibration_pass-error"' in bad.text
    assert app_client.post(f"/projects/{project.id}/edit", data=form).status_code == 303
    db.refresh(project)
    assert {k: getattr(project, k) for k in QUALITY} == QUALITY
    detail = app_client.get(f"/projects/{project.id}")
    assert "gold rate 0.2" in detail.text and f"/projects/{project.id}/annotators" in detail.text
