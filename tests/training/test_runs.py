"""Training runs from the browser: start (form and API), the worker's job end to end with a tiny model,
progress, metrics, the reliability plot and the model download; role checks; disagreements JSON."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role, User
from app.config import Settings
from app.db import utcnow
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.jobs.runner import JobData, PermanentFailure
from app.projects.models import Project
from app.training import service as training_service
from app.training import worker
from app.training.models import TrainingRun, TrainingStatus
from tests.factories import login, make_judgement, make_pair_item, make_project, make_user
from tests.training.tiny import BAD, COLOURS, GOOD, TOPICS

TINY = {"max_length": "32", "learning_rate": "2e-3", "epochs": "3", "batch_size": "8",
        "eval_fraction": "0.25", "seed": "0", "use_margin": "on", "center_rewards_coefficient": "0"}


def judged_project(db: Session, members: list[User], pairs: int = 40) -> Project:
    """Pairs whose candidate a holds a GOOD word and b a BAD one, each judged "a" by one annotator."""
    project = make_project(db, name="Tea & <Cats> / test", members=members)
    voter = make_user(db, Role.ANNOTATOR)
    for index in range(pairs):
        topic, colour = TOPICS[index % len(TOPICS)], COLOURS[index % len(COLOURS)]
        item = make_pair_item(db, project, f"tell me about the {colour} {topic}.",
                              a=f"here is the {GOOD[index % 6]} answer about {topic}.",
                              b=f"here is the {BAD[index % 6]} answer about {topic}.")
        make_judgement(db, item, voter, "a")
    return project


def claim(db: Session) -> JobData:
    job = jobs_service.claim(db, kinds=[training_service.TRAIN_JOB], worker_id="w1", lease_seconds=60,
                             now=utcnow())
    assert job is not None
    return JobData(id=job.id, kind=job.kind, payload=dict(job.payload), attempts=job.attempts,
                   max_attempts=job.max_attempts, worker_id="w1", lease_seconds=60)


def start_form(client: TestClient, project: Project, token: str, **values: Any) -> Any:
    return client.post(f"/projects/{project.id}/training", data={"csrf_token": token, **TINY, **values})


def test_researcher_trains_watches_and_downloads(
    app_client: TestClient, db: Session, session_factory: sessionmaker[Session], settings: Settings,
    tiny_backbone: str,
) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = judged_project(db, [researcher])
    token = login(app_client, db, researcher)
    response = start_form(app_client, project, token, base_model=tiny_backbone)
    assert response.status_code == 303, response.text
    run = db.scalars(select(TrainingRun).where(TrainingRun.project_id == project.id)).one()
    assert response.headers["location"].endswith(f"/training/runs/{run.id}")
    assert run.config["epochs"] == 3 and run.config["use_margin"] is True
    assert run.out_dir.startswith(str((settings.data_dir / "training").resolve()))

    queued = app_client.get(f"/projects/{project.id}/training/runs/{run.id}", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in queued.text and "waiting for the worker" in queued.text
    assert app_client.get(f"/projects/{project.id}/training/runs/{run.id}/model.zip").status_code == 404

    db.commit()
    worker.handle_train(session_factory, claim(db), settings)

    db.expire_all()
    done = db.get(TrainingRun, run.id)
    assert done is not None and done.status == TrainingStatus.DONE
    assert done.metrics is not None and done.metrics["n_pairs"] == 40 and done.metrics["n_eval"] > 0
    assert done.progress["step"] == done.progress["total"] > 0
    page = app_client.get(f"/projects/{project.id}/training/runs/{run.id}")
    assert "Held-out accuracy" in page.text and "every 2s" not in page.text
    png = app_client.get(f"/projects/{project.id}/training/runs/{run.id}/reliability.png")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    archive = app_client.get(f"/projects/{project.id}/training/runs/{run.id}/model.zip")
    assert archive.status_code == 200
    assert f'filename="reward-model-tea-cats-test-run-{run.id}.zip"' in archive.headers["content-disposition"]
    names = set(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert {"metrics.json", "reliability.png", "model/config.json", "model/model.safetensors"} <= names
    assert not any("export" in name for name in names)  # the prompts stay on the server


def test_bad_form_values_rerender_with_the_field_and_start_nothing(
    app_client: TestClient, db: Session
) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[researcher])
    token = login(app_client, db, researcher)
    response = start_form(app_client, project, token, epochs="0")
    assert response.status_code == 422
    assert "epochs" in response.text and "greater than or equal to 1" in response.text
    assert start_form(app_client, project, token, learning_rate="fast").status_code == 422
    assert db.scalars(select(TrainingRun)).all() == []
    assert db.scalars(select(Job).where(Job.kind == training_service.TRAIN_JOB)).all() == []


def test_a_second_run_waits_for_the_first(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[researcher])
    token = login(app_client, db, researcher)
    assert start_form(app_client, project, token).status_code == 303
    again = start_form(app_client, project, token)
    assert again.status_code == 409 and "still queued or running" in again.text


def test_a_project_without_judged_pairs_fails_the_run_for_good(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, tiny_backbone: str
) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[researcher])
    form = training_service.parse_form({"base_model": tiny_backbone})
    run = training_service.start_run(db, project=project, actor=researcher, form=form,
                                     runs_root=settings.data_dir / "training")
    db.commit()
    with pytest.raises(PermanentFailure, match="no preference pairs"):
        worker.handle_train(session_factory, claim(db), settings)
    db.expire_all()
    failed = db.get(TrainingRun, run.id)
    assert failed is not None and failed.status == TrainingStatus.FAILED and "no preference pairs" in (
        failed.error or "")


def test_roles_annotators_see_no_training_and_only_admins_see_disagreements(
    app_client: TestClient, db: Session
) -> None:
    roles = (Role.ANNOTATOR, Role.RESEARCHER, Role.ADMIN)
    annotator, researcher, admin = (make_user(db, role) for role in roles)
    project = make_project(db, members=[annotator, researcher])
    login(app_client, db, annotator)
    assert app_client.get(f"/projects/{project.id}/training").status_code == 403
    login(app_client, db, researcher)
    assert app_client.get(f"/projects/{project.id}/training").status_code == 200
    assert app_client.get(f"/api/v1/projects/{project.id}/disagreements").status_code == 403
    token = login(app_client, db, admin)
    item = make_pair_item(db, project)
    make_judgement(db, item, annotator, "a")
    training_service.store_scores(db, scores={item.candidate_a_id: 0.0, item.candidate_b_id: 4.0},  # type: ignore[dict-item]
                                  model_label="rm")
    rows = app_client.get(f"/api/v1/projects/{project.id}/disagreements?min_confidence=0.9").json()
    assert [(r["item_id"], r["human_choice"], r["model_choice"]) for r in rows] == [(item.id, "a", "b")]
    assert app_client.get(f"/api/v1/projects/{project.id}/disagreements?min_confidence=2").status_code == 422
    page = app_client.get(f"/projects/{project.id}/disagreements")
    assert page.status_code == 200 and f"#{item.id}" in page.text
    toggle = app_client.post(f"/projects/{project.id}/training/queue-order",
                             data={"csrf_token": token, "uncertain_first": "on"})
    assert toggle.status_code == 303
    db.refresh(project)
    assert project.uncertain_first is True


def test_api_starts_and_lists_runs(app_client: TestClient, db: Session) -> None:
    from tests.factories import bearer

    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[researcher])
    headers = bearer(db, researcher)
    created = app_client.post(f"/api/v1/projects/{project.id}/training-runs", headers=headers,
                              json={"epochs": 2, "max_length": 64})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "queued" and created.json()["config"]["epochs"] == 2
    bad = app_client.post(f"/api/v1/projects/{project.id}/training-runs", headers=headers, json={"epochs": 0})
    assert bad.status_code == 422
    listed = app_client.get(f"/api/v1/projects/{project.id}/training-runs", headers=headers).json()
    assert [r["id"] for r in listed] == [created.json()["id"]]
