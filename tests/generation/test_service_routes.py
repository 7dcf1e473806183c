from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.db import utcnow
from app.generation.models import GenerationRun, RunStatus
from app.jobs import service as jobs_service
from app.projects.models import Project
from tests.factories import bearer, login, make_project, make_prompt, make_user

HX = {"HX-Request": "true"}


def _project_with_prompts(db: Session, *members: User) -> Project:
    project = make_project(db, members=list(members))
    for text in ("one", "two", "three"):
        make_prompt(db, project, text)
    return project


def test_admin_starts_a_run_and_htmx_gets_the_polling_panel(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = _project_with_prompts(db)
    token = login(app_client, db, admin)
    response = app_client.post(f"/projects/{project.id}/generation", headers={**HX, "X-CSRF-Token": token})
    assert response.status_code == 200
    assert 'id="generation-panel"' in response.text
    assert 'hx-trigger="every 2s"' in response.text and 'hx-swap="outerHTML"' in response.text
    assert re.search(rf'hx-get="[^"]*/projects/{project.id}/generation/panel"', response.text)
    assert "0 / 3 prompts" in response.text and "queued" in response.text
    assert db.query(GenerationRun).filter_by(project_id=project.id).count() == 1


def test_start_without_javascript_redirects_to_the_project(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = _project_with_prompts(db)
    token = login(app_client, db, admin)
    response = app_client.post(f"/projects/{project.id}/generation", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/projects/{project.id}")


def test_second_start_is_a_conflict_shown_in_the_flash(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = _project_with_prompts(db)
    token = login(app_client, db, admin)
    headers = {**HX, "X-CSRF-Token": token}
    assert app_client.post(f"/projects/{project.id}/generation", headers=headers).status_code == 200
    again = app_client.post(f"/projects/{project.id}/generation", headers=headers)
    assert again.status_code == 409
    assert again.headers["HX-Retarget"] == "#flash"


def test_annotator_may_not_start_generation(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db, Role.ANNOTATOR)
    project = _project_with_prompts(db, annotator)
    token = login(app_client, db, annotator)
    response = app_client.post(f"/projects/{project.id}/generation", data={"csrf_token": token})
    assert response.status_code == 403
    assert db.query(GenerationRun).count() == 0


def test_member_sees_the_panel_without_the_button_and_outsiders_get_403(app_client: TestClient,
                                                                        db: Session) -> None:
    annotator = make_user(db, Role.ANNOTATOR)
    project = _project_with_prompts(db, annotator)
    login(app_client, db, annotator)
    fragment = app_client.get(f"/projects/{project.id}/generation/panel", headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "Generate candidates" not in fragment.text
    assert "No generation runs yet" in fragment.text
    assert fragment.headers["Vary"] == "HX-Request"
    login(app_client, db, make_user(db, Role.ANNOTATOR))
    assert app_client.get(f"/projects/{project.id}/generation/panel").status_code == 403


def test_panel_renders_progress_and_stops_polling_when_done(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    run = GenerationRun(project_id=project.id, model="", status=RunStatus.DONE, total_prompts=8,
                        done_prompts=8)
    db.add(run)
    db.add(GenerationRun(project_id=project.id, model="m", status=RunStatus.FAILED, total_prompts=4,
                         done_prompts=1, error="CUDA out of <memory>"))
    db.flush()
    login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/generation/panel")
    assert page.status_code == 200 and "<html" in page.text
    assert 'value="8" max="8"' in page.text and "8 / 8 prompts" in page.text
    assert "1 / 4 prompts" in page.text
    assert "CUDA out of &lt;memory&gt;" in page.text  # escaped
    assert "every 2s" not in page.text
    assert "Generate candidates" in page.text


def test_panel_of_a_running_run_polls_and_shows_its_rate(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    login(app_client, db, admin)  # first: password hashing takes a while, and the rate counts from now
    job = jobs_service.enqueue(db, kind="generate", payload={})
    db.add(GenerationRun(project_id=project.id, job_id=job.id, model="", status=RunStatus.RUNNING,
                         total_prompts=100, done_prompts=25, started_at=utcnow() - timedelta(seconds=50)))
    db.flush()
    fragment = app_client.get(f"/projects/{project.id}/generation/panel", headers=HX).text
    assert 'hx-trigger="every 2s"' in fragment
    assert "25 / 100 prompts" in fragment
    assert "0.50" in fragment  # prompts per second
    assert "2m 30s" in fragment or "2m 29s" in fragment or "2m 31s" in fragment  # ETA: 75 prompts at 0.5/s


def test_api_starts_and_lists_runs(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = _project_with_prompts(db)
    headers = bearer(db, admin)
    url = f"/api/v1/projects/{project.id}/generation-runs"
    created = app_client.post(url, headers=headers, json={"model": "tiny/model"})
    assert created.status_code == 201
    body = created.json()
    assert (body["status"], body["model"], body["total_prompts"]) == ("queued", "tiny/model", 3)
    assert body["done_prompts"] == 0
    listed = app_client.get(url, headers=headers)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [body["id"]]
    assert app_client.post(url, headers=headers).status_code == 409


def test_api_start_needs_an_admin(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = _project_with_prompts(db, researcher)
    headers = bearer(db, researcher)
    url = f"/api/v1/projects/{project.id}/generation-runs"
    assert app_client.post(url, headers=headers).status_code == 403
    assert app_client.get(url, headers=headers).status_code == 200
