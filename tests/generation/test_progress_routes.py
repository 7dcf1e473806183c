"""Run progress in the browser and the API: tokens per second, failures with their reason, cancel, retry."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings
from app.db import utcnow
from app.generation import service as generation_service
from app.generation import worker
from app.generation.models import GenerationRun, RunStatus
from app.jobs import service as jobs_service
from app.jobs.models import Job, JobStatus
from app.jobs.runner import LeaseLost
from app.projects.models import Project
from tests.factories import bearer, login, make_project, make_prompt, make_user
from tests.generation.test_worker import FakeBackend, _claim

HX = {"HX-Request": "true"}


def _running(db: Session) -> tuple[Project, GenerationRun]:
    project = make_project(db)
    make_prompt(db, project, "left to do")
    job = jobs_service.enqueue(db, kind="generate", payload={})
    run = GenerationRun(project_id=project.id, job_id=job.id, model="", status=RunStatus.RUNNING,
                        total_prompts=10, done_prompts=4, tokens=400,
                        started_at=utcnow() - timedelta(seconds=20),
                        params={"configs": []}, failures=[])
    db.add(run)
    db.flush()
    return project, run


def test_a_running_run_shows_tokens_per_second_and_cancels_from_the_panel(
        app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project, run = _running(db)
    token = login(app_client, db, admin)
    fragment = app_client.get(f"/projects/{project.id}/generation/panel", headers=HX).text
    assert "4 / 10 prompts" in fragment
    assert re.search(r'class="num">(19\.\d|20\.0)</td>', fragment)  # tokens/s: 400 tokens in about 20 s
    assert f"/generation/{run.id}/cancel" in fragment and ">Cancel<" in fragment

    cancelled = app_client.post(f"/projects/{project.id}/generation/{run.id}/cancel",
                                headers={**HX, "X-CSRF-Token": token})
    assert cancelled.status_code == 200
    assert "cancelled" in cancelled.text and "every 2s" not in cancelled.text
    db.expire_all()
    assert db.get(GenerationRun, run.id).status == RunStatus.CANCELLED  # type: ignore[union-attr]
    assert db.get(Job, run.job_id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    assert f"/generation/{run.id}/retry" in cancelled.text


def test_failures_are_listed_with_their_reason_and_retry_starts_a_new_run(
        app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    make_prompt(db, project, "refused")
    run = GenerationRun(project_id=project.id, model="", status=RunStatus.DONE, total_prompts=1,
                        done_prompts=0, params={"configs": []},
                        failures=[{"prompt_id": 1, "config": "remote", "reason": "HTTP 400: <bad>"}])
    db.add(run)
    db.flush()
    token = login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/generation/panel").text
    assert "1 prompt(s) failed" in page and "HTTP 400: &lt;bad&gt;" in page
    retried = app_client.post(f"/projects/{project.id}/generation/{run.id}/retry",
                              headers={**HX, "X-CSRF-Token": token})
    assert retried.status_code == 200 and "every 2s" in retried.text
    runs = db.scalars(select(GenerationRun).where(GenerationRun.project_id == project.id)).all()
    assert sorted(r.status for r in runs) == [RunStatus.DONE, RunStatus.QUEUED]


def test_api_cancel_and_retry(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project, run = _running(db)
    url = f"/api/v1/projects/{project.id}/generation-runs/{run.id}"
    headers = bearer(db, admin)
    assert app_client.post(f"{url}/retry", headers=headers).status_code == 409  # still active
    cancelled = app_client.post(f"{url}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["tokens"] == 400
    assert app_client.post(f"{url}/cancel", headers=headers).status_code == 409
    retried = app_client.post(f"{url}/retry", headers=headers)
    assert retried.status_code == 201 and retried.json()["status"] == "queued"


def test_a_worker_stops_after_its_run_is_cancelled_and_keeps_what_it_stored(
        db: Session, session_factory: sessionmaker[Session], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, candidates_per_prompt=2)
    for i in range(10):
        make_prompt(db, project, f"p{i}")
    run = generation_service.start_run(db, project=project, actor=admin)
    job = _claim(db)
    backend = FakeBackend()

    def generate_then_cancel(*args: object) -> object:
        result = FakeBackend.generate(backend, *args)  # type: ignore[arg-type]
        if len(backend.calls) == 2:
            generation_service.cancel_run(db, project=project, run_id=run.id, actor=admin, now=utcnow())
        return result

    monkeypatch.setattr(backend, "generate", generate_then_cancel)
    monkeypatch.setattr(worker, "load_backend", lambda *a, **k: backend)
    with pytest.raises(LeaseLost):
        worker.handle_generate(session_factory, job, settings)
    db.refresh(run)
    assert (run.status, run.done_prompts) == (RunStatus.CANCELLED, 9)  # the batch in flight is still stored
    assert len(backend.calls) == 2
