from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.db import unit_of_work, utcnow
from app.errors import Conflict, Invalid
from app.generation import service as generation_service
from app.generation.models import GenerationRun, RunStatus
from app.jobs import service as jobs_service
from app.jobs.models import Job, JobStatus
from tests.factories import make_project, make_prompt, make_user


def test_start_run_queues_a_run_and_its_job_in_the_callers_transaction(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    project.generation = {"model": "some/model", "temperature": 0.5, "seed": 11}
    for text in ("one", "two", "three"):
        make_prompt(db, project, text)
    make_prompt(db, project, "already answered", candidates=["a", "b"])  # imported: never generated

    run = generation_service.start_run(db, project=project, actor=admin)

    assert (run.status, run.model, run.total_prompts) == (RunStatus.QUEUED, "some/model", 3)
    assert run.done_prompts == 0
    [config] = run.params["configs"]
    assert (config["key"], config["backend"], config["model"]) == ("default", "transformers", "some/model")
    assert config["params"] == {"max_new_tokens": 256, "temperature": 0.5, "top_p": 0.95, "seed": 11,
                                "stop": [], "system_prompt": ""}
    job = db.get(Job, run.job_id)
    assert job is not None
    assert (job.kind, job.payload, job.status) == ("generate", {"run_id": run.id}, JobStatus.QUEUED)
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "generation.start"))
    assert event is not None and event.project_id == project.id and event.actor_id == admin.id


def test_empty_model_means_the_bundled_default_and_a_model_can_be_given(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    make_prompt(db, project)
    assert generation_service.start_run(db, project=project, actor=admin).model == ""
    other = make_project(db)
    make_prompt(db, other)
    run = generation_service.start_run(db, project=other, actor=admin, model=" /models/x ")
    assert run.model == "/models/x"


def test_rolled_back_start_leaves_no_run_and_no_job(committed: sessionmaker[Session]) -> None:
    with unit_of_work(committed) as session:
        admin = make_user(session, Role.ADMIN)
        project = make_project(session)
        make_prompt(session, project)
    with pytest.raises(RuntimeError), unit_of_work(committed) as session:
        project = session.merge(project)
        generation_service.start_run(session, project=project, actor=session.merge(admin))
        raise RuntimeError("the request failed after starting the run")
    with unit_of_work(committed) as session:
        assert session.scalar(select(func.count(Job.id))) == 0
        assert session.scalar(select(func.count(GenerationRun.id))) == 0


def test_second_start_while_a_run_is_active_is_a_conflict(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    make_prompt(db, project)
    run = generation_service.start_run(db, project=project, actor=admin)
    with pytest.raises(Conflict):
        generation_service.start_run(db, project=project, actor=admin)
    run.status = RunStatus.RUNNING
    db.flush()
    with pytest.raises(Conflict):
        generation_service.start_run(db, project=project, actor=admin)
    run.status = RunStatus.DONE
    db.flush()
    assert generation_service.start_run(db, project=project, actor=admin).id != run.id


def test_database_allows_one_active_run_per_project(db: Session) -> None:
    project = make_project(db)
    db.add(GenerationRun(project_id=project.id, model="", status=RunStatus.RUNNING))
    db.flush()
    db.add(GenerationRun(project_id=project.id, model="", status=RunStatus.QUEUED))
    with pytest.raises(IntegrityError, match="ix_generation_runs_one_active"):
        db.flush()


def test_nothing_to_generate_is_refused(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    make_prompt(db, project, candidates=["a", "b"])
    with pytest.raises(Invalid):
        generation_service.start_run(db, project=project, actor=admin)


def test_invalid_generation_settings_are_refused(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    project.generation = {"temperature": "hot"}
    make_prompt(db, project)
    with pytest.raises(Invalid):
        generation_service.start_run(db, project=project, actor=admin)


def test_a_run_whose_job_was_cancelled_is_failed_and_no_longer_blocks(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    make_prompt(db, project)
    run = generation_service.start_run(db, project=project, actor=admin)
    assert run.job_id is not None
    jobs_service.cancel(db, job_id=run.job_id, now=utcnow())
    views = generation_service.run_views(db, project_id=project.id, now=utcnow())
    assert [(v.id, v.status) for v in views] == [(run.id, RunStatus.FAILED)]
    assert views[0].error is not None and "cancelled" in views[0].error
    assert generation_service.start_run(db, project=project, actor=admin).status == RunStatus.QUEUED


def test_progress_reports_rate_and_eta(db: Session) -> None:
    project = make_project(db)
    now = utcnow()
    run = GenerationRun(project_id=project.id, model="", status=RunStatus.RUNNING, total_prompts=20,
                        done_prompts=5, started_at=now - timedelta(seconds=10))
    info = generation_service.progress(run, now=now)
    assert (info["done"], info["total"], info["percent"], info["active"]) == (5, 20, 25.0, True)
    assert info["prompts_per_second"] == pytest.approx(0.5)
    assert info["eta_seconds"] == pytest.approx(30.0)
    run.status, run.done_prompts, run.finished_at = RunStatus.DONE, 20, now
    done = generation_service.progress(run, now=now + timedelta(hours=1))
    assert done["prompts_per_second"] == pytest.approx(2.0)  # measured up to the finish, not to now
    assert (done["eta_seconds"], done["percent"]) == (None, 100.0)


def test_progress_before_generation_began_has_no_rate(db: Session) -> None:
    project = make_project(db)
    run = GenerationRun(project_id=project.id, model="", status=RunStatus.QUEUED, total_prompts=0,
                        done_prompts=0)
    info = generation_service.progress(run, now=utcnow())
    assert (info["prompts_per_second"], info["eta_seconds"], info["percent"]) == (None, None, 0.0)


def test_panel_state_counts_remaining_prompts_only_when_idle(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    make_prompt(db, project)
    make_prompt(db, project)
    idle = generation_service.panel_state(db, project=project, now=utcnow())
    assert (idle.active, idle.remaining, idle.runs) == (False, 2, [])
    generation_service.start_run(db, project=project, actor=admin)
    busy = generation_service.panel_state(db, project=project, now=utcnow())
    assert (busy.active, busy.remaining, len(busy.runs)) == (True, None, 1)
