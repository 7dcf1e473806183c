"""The whole path with a real (tiny, random-weight) model: job queue -> runner -> worker -> candidates."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings
from app.db import unit_of_work
from app.generation import service as generation_service
from app.generation import worker
from app.generation.generator import sample_seed
from app.generation.models import GenerationRun, RunStatus
from app.jobs.models import Job, JobStatus
from app.jobs.runner import run_worker
from app.projects.models import Candidate, Item, Project, Prompt
from tests.factories import make_project, make_prompt, make_user
from tests.generation.test_generator import save_tiny_model  # skips the module when torch is missing

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = ("what is two plus two", "name a colour", "the sky is")
GENERATION = {"max_new_tokens": 6, "temperature": 0.8, "top_p": 0.95, "seed": 3}


def _texts(session: Session, project_id: int) -> dict[tuple[str, int], str]:
    query = (select(Prompt.messages, Candidate.sample_index, Candidate.text)
             .join(Prompt, Prompt.id == Candidate.prompt_id).where(Prompt.project_id == project_id))
    rows = session.execute(query)
    return {(messages[-1]["content"], index): text for messages, index, text in rows}


def test_worker_generates_with_a_tiny_model_reproducibly(committed: sessionmaker[Session], settings: Settings,
                                                         tmp_path: Path) -> None:
    model_dir = save_tiny_model(tmp_path / "tiny-llama")
    projects: list[Project] = []
    with unit_of_work(committed) as session:
        admin = make_user(session, Role.ADMIN)
        for _ in range(2):  # two projects with the same prompts and settings
            project = make_project(session, candidates_per_prompt=2)
            project.generation = {"model": str(model_dir), **GENERATION, "include_flagged": True}
            for text in TEXTS:
                make_prompt(session, project, text)
            generation_service.start_run(session, project=project, actor=admin)
            projects.append(project)

    handled = run_worker(committed, worker.handlers(settings), worker_id="it", poll_seconds=0.01,
                         lease_seconds=60, stop=threading.Event(), max_jobs=2)

    assert handled == 2
    with unit_of_work(committed) as session:
        assert {job.status for job in session.scalars(select(Job))} == {JobStatus.DONE}
        runs = list(session.scalars(select(GenerationRun)))
        assert {(r.status, r.done_prompts, r.total_prompts) for r in runs} == {(RunStatus.DONE, 3, 3)}
        candidates = session.scalars(select(Candidate).join(Prompt, Prompt.id == Candidate.prompt_id)
                                     .where(Prompt.project_id == projects[0].id)).all()
        assert len(candidates) == 6
        assert {(c.model, c.config_key) for c in candidates} == {(str(model_dir), "default")}
        assert all(c.params == {**GENERATION, "stop": [], "system_prompt": ""} for c in candidates)
        messages = {p.id: p.messages for p in session.scalars(select(Prompt))}
        assert all(c.seed == sample_seed(3, messages[c.prompt_id], c.sample_index) for c in candidates)
        assert len(session.scalars(select(Item).where(Item.project_id == projects[0].id)).all()) == 3
        assert _texts(session, projects[0].id) == _texts(session, projects[1].id)  # same seeds, same texts
