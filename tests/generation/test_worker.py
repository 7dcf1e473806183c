"""The generate job's loop against the real database, with a stand-in for the ML backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings
from app.db import utcnow
from app.generation import service as generation_service
from app.generation import worker
from app.generation.generator import Conversation, DecodingParams, Sample
from app.generation.model_store import ModelNotAvailable
from app.generation.models import GenerationRun, RunStatus
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.jobs.runner import Interrupted, JobData, LeaseLost, PermanentFailure
from app.projects.models import Candidate, CandidateSource, Item, Mode, Project, Prompt
from tests.factories import make_project, make_prompt, make_user


class FakeBackend:
    """Answers "<prompt> #<j>" and records each batch it was asked for; can fail on a given call."""

    model_id = "fake/model"
    revision = "rev-1"

    def __init__(self, fail_on_call: int | None = None, text: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.requested: list[tuple[str, Path]] = []  # (model, models_dir) of each load
        self.fail_on_call = fail_on_call
        self.text = text

    def generate(self, conversations: Sequence[Conversation], n: int,
                 params: DecodingParams) -> list[list[Sample]]:
        self.calls.append([c[-1]["content"] for c in conversations])
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("CUDA out of memory")
        return [[Sample(text=f"{c[-1]['content']} #{j}" if self.text is None else self.text, sample_index=j,
                        seed=params.seed * 100 + j, tokens=2) for j in range(n)] for c in conversations]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()

    def load(model: str, models_dir: Path, device: str = "auto") -> FakeBackend:
        backend.requested.append((model, models_dir))
        return backend

    monkeypatch.setattr(worker, "load_backend", load)
    return backend


def _project(db: Session, prompts: int, *, mode: Mode = Mode.PAIRWISE, n: int = 2) -> Project:
    project = make_project(db, mode=mode, candidates_per_prompt=n)
    project.generation = {"temperature": 0.7, "seed": 5, "max_new_tokens": 32}
    for i in range(prompts):
        make_prompt(db, project, f"prompt {i}")
    return project


def _start(db: Session, project: Project) -> tuple[GenerationRun, JobData]:
    run = generation_service.start_run(db, project=project, actor=make_user(db, Role.ADMIN))
    return run, _claim(db)


def _claim(db: Session, worker_id: str = "w1") -> JobData:
    job = jobs_service.claim(db, kinds=["generate"], worker_id=worker_id, lease_seconds=60, now=utcnow())
    assert job is not None
    return JobData(id=job.id, kind=job.kind, payload=dict(job.payload), attempts=job.attempts,
                   max_attempts=job.max_attempts, worker_id=worker_id, lease_seconds=60)


def _candidates(db: Session, project: Project) -> list[Candidate]:
    db.expire_all()
    query = (select(Candidate).join(Prompt, Prompt.id == Candidate.prompt_id)
             .where(Prompt.project_id == project.id, Candidate.source == CandidateSource.MODEL)
             .order_by(Candidate.prompt_id, Candidate.sample_index))
    return list(db.scalars(query))


def test_stores_n_candidates_per_prompt_with_provenance_and_builds_items(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=3, n=3)
    run, job = _start(db, project)

    worker.handle_generate(session_factory, job, settings)

    candidates = _candidates(db, project)
    assert [(c.text, c.sample_index) for c in candidates[:3]] == [("prompt 0 #0", 0), ("prompt 0 #1", 1),
                                                                 ("prompt 0 #2", 2)]
    assert len(candidates) == 9
    params = {"max_new_tokens": 32, "temperature": 0.7, "top_p": 0.95, "seed": 5, "stop": [],
              "system_prompt": ""}
    assert {(c.model, c.revision, c.config_key) for c in candidates} == {("fake/model", "rev-1", "default")}
    assert all(c.params == params and c.seed == 500 + c.sample_index for c in candidates)
    assert len(db.scalars(select(Item).where(Item.project_id == project.id)).all()) == 9  # 3 pairs a prompt
    db.refresh(run)
    assert (run.status, run.done_prompts, run.total_prompts, run.tokens) == (RunStatus.DONE, 3, 3, 18)
    assert run.started_at is not None and run.finished_at is not None and run.error is None
    assert fake.requested == [("", settings.models_dir)]
    assert db.get(Job, job.id).progress == {"done": 3, "total": 3}  # type: ignore[union-attr]


def test_likert_project_gets_one_item_per_candidate(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=2, mode=Mode.LIKERT, n=2)
    _, job = _start(db, project)
    worker.handle_generate(session_factory, job, settings)
    assert len(db.scalars(select(Item).where(Item.project_id == project.id)).all()) == 4


def test_prompts_go_to_the_model_one_first_then_in_batches_of_eight(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=19)
    make_prompt(db, project, "imported", candidates=["a", "b"])
    _, job = _start(db, project)
    worker.handle_generate(session_factory, job, settings)
    assert [len(call) for call in fake.calls] == [1, 8, 8, 2]  # a quick first item, then full batches
    assert "imported" not in {text for call in fake.calls for text in call}


def test_a_crash_keeps_stored_batches_and_the_retry_stores_nothing_twice(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=12)
    run, job = _start(db, project)
    fake.fail_on_call = 2
    with pytest.raises(RuntimeError, match="out of memory"):
        worker.handle_generate(session_factory, job, settings)
    db.refresh(run)
    assert (run.status, run.done_prompts) == (RunStatus.QUEUED, 1)  # the first batch is kept
    assert run.error is not None and "out of memory" in run.error
    assert len(_candidates(db, project)) == 2

    fake.calls.clear()
    fake.fail_on_call = None
    worker.handle_generate(session_factory, job, settings)  # the same job, retried
    assert [len(call) for call in fake.calls] == [1, 8, 2]
    candidates = _candidates(db, project)
    assert len(candidates) == 24
    assert len({(c.prompt_id, c.sample_index) for c in candidates}) == 24
    db.refresh(run)
    assert (run.status, run.done_prompts, run.total_prompts) == (RunStatus.DONE, 12, 12)


def test_storing_a_batch_again_adds_nothing(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=2)
    run, _ = _start(db, project)
    plan = generation_service.begin_run(db, run_id=run.id)
    assert plan is not None
    batch = generation_service.next_prompts(db, plan=plan, config_key="default", limit=8)
    samples = FakeBackend().generate([p.messages for p in batch], 2, DecodingParams(seed=1))
    results = [(p.id, s) for p, s in zip(batch, samples, strict=True)]
    for expected in (2, 0):
        assert generation_service.store_batch(db, plan=plan, config_key="default", results=results,
                                              model_id="m", revision="r", params={}) == expected
    assert len(_candidates(db, project)) == 4
    assert len(db.scalars(select(Item).where(Item.project_id == project.id)).all()) == 2
    db.refresh(run)
    assert run.done_prompts == 2


def test_empty_answers_are_stored_as_they_are(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=1)
    _, job = _start(db, project)
    fake.text = ""
    worker.handle_generate(session_factory, job, settings)
    assert [c.text for c in _candidates(db, project)] == ["", ""]


def test_the_last_failed_attempt_fails_the_run(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=1)
    run, job = _start(db, project)
    fake.fail_on_call = 1
    last = JobData(id=job.id, kind=job.kind, payload=job.payload, attempts=5, max_attempts=5,
                   worker_id=job.worker_id, lease_seconds=60)
    with pytest.raises(RuntimeError):
        worker.handle_generate(session_factory, last, settings)
    db.refresh(run)
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert run.error == "RuntimeError: CUDA out of memory"


def test_a_missing_model_fails_at_once(
        db: Session, session_factory: sessionmaker[Session], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(model: str, models_dir: Path, device: str = "auto") -> FakeBackend:
        raise ModelNotAvailable(f"model path {model!r} does not exist")

    monkeypatch.setattr(worker, "load_backend", missing)
    project = _project(db, prompts=1)
    project.generation = {"model": "/nowhere/model"}
    run, job = _start(db, project)
    with pytest.raises(PermanentFailure):
        worker.handle_generate(session_factory, job, settings)
    db.refresh(run)
    assert run.status == RunStatus.FAILED and run.error is not None and "/nowhere/model" in run.error


def test_a_stop_request_hands_the_run_back_between_batches(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=10)
    run, job = _start(db, project)
    job.stop.set()
    with pytest.raises(Interrupted):
        worker.handle_generate(session_factory, job, settings)
    db.refresh(run)
    assert run.status == RunStatus.QUEUED and fake.calls == []


def test_a_job_cancelled_while_its_model_loads_generates_nothing(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=10)
    _, job = _start(db, project)
    jobs_service.cancel(db, job_id=job.id, now=utcnow())
    with pytest.raises(LeaseLost):  # the heartbeat after loading finds the job gone
        worker.handle_generate(session_factory, job, settings)
    assert fake.calls == [] and _candidates(db, project) == []
    # a cancel between batches keeps the batch in flight: tests/generation/test_progress_routes.py


def test_a_finished_run_is_not_generated_again(
        db: Session, session_factory: sessionmaker[Session], settings: Settings, fake: FakeBackend) -> None:
    project = _project(db, prompts=1)
    run, job = _start(db, project)
    run.status = RunStatus.DONE
    db.flush()
    worker.handle_generate(session_factory, job, settings)
    assert fake.calls == []


def test_handlers_map_the_generate_kind() -> None:
    assert set(worker.HANDLERS) == {"generate"}
    assert set(worker.handlers(Settings())) == {"generate"}
