"""Crash safety with real worker processes (`python -m app.cli worker`) on the test database.

A worker killed with SIGKILL mid-run keeps every batch it stored; its job comes back when its lease
lapses and a second worker finishes it; two workers on one queue share the jobs and store nothing twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.db import unit_of_work, utcnow
from app.generation import service as generation_service
from app.generation.models import GenerationRun, RunStatus
from app.jobs import service as jobs_service
from app.jobs.models import Job, JobStatus
from app.projects.models import Candidate, Item, Prompt
from tests.factories import make_project, make_prompt, make_user
from tests.generation.test_generator import save_tiny_model  # skips the module when torch is missing

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3
N = 2  # candidates per prompt


def _worker(database_url: str, data_dir: Path, *, once: bool,
            lease_seconds: int = LEASE_SECONDS) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFSTUDIO_DATABASE_URL": database_url, "PREFSTUDIO_DATA_DIR": str(data_dir),
           "PREFSTUDIO_JOB_LEASE_SECONDS": str(lease_seconds), "PREFSTUDIO_WORKER_POLL_SECONDS": "0.2",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "app.cli", "worker", *(["--once"] if once else [])]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _projects(factory: sessionmaker[Session], model_dir: Path, *, count: int, prompts: int,
              max_new_tokens: int) -> list[int]:
    ids = []
    with unit_of_work(factory) as session:
        admin = make_user(session, Role.ADMIN)
        for _ in range(count):
            project = make_project(session, candidates_per_prompt=N)
            project.generation = {"model": str(model_dir), "max_new_tokens": max_new_tokens, "seed": 1,
                                  "include_flagged": True}  # a random model rambles: pair it all the same
            for i in range(prompts):
                make_prompt(session, project, f"the sky is {i}")
            generation_service.start_run(session, project=project, actor=admin)
            ids.append(project.id)
    return ids


def _per_prompt(factory: sessionmaker[Session]) -> dict[int, int]:
    """Candidates stored per prompt (every prompt listed, 0 included)."""
    with unit_of_work(factory) as session:
        rows = session.execute(select(Prompt.id, func.count(Candidate.id))
                               .outerjoin(Candidate, Candidate.prompt_id == Prompt.id).group_by(Prompt.id))
        return {prompt_id: count for prompt_id, count in rows}


def _wait_for_stored(factory: sessionmaker[Session], worker: subprocess.Popen[str], least: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = sum(_per_prompt(factory).values())
        if stored >= least:
            return stored
        assert worker.poll() is None, worker.communicate()[0]
        time.sleep(0.02)
    raise AssertionError("the worker stored nothing in two minutes")


def test_a_worker_killed_mid_run_keeps_its_batches_and_its_job_returns_after_the_lease(
        committed: sessionmaker[Session], database_url: str, tmp_path: Path) -> None:
    model_dir = save_tiny_model(tmp_path / "tiny")
    prompts = 48
    _projects(committed, model_dir, count=1, prompts=prompts, max_new_tokens=24)

    first = _worker(database_url, tmp_path / "data", once=True)
    _wait_for_stored(committed, first, least=3 * N)  # the quick first batch and some more
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)  # reaps it and closes its pipe
    killed_at = utcnow()

    stored = _per_prompt(committed)
    assert 0 < sum(stored.values()) < prompts * N, "kill the worker mid-run: make the run longer"
    assert set(stored.values()) <= {0, N}  # a batch is stored whole or not at all
    with unit_of_work(committed) as session:
        job = session.scalars(select(Job)).one()
        assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
        assert job.locked_until is not None and job.locked_until > killed_at - timedelta(seconds=1)
        # still leased: no worker can claim it before the lease lapses
        assert jobs_service.claim(session, kinds=["generate"], worker_id="probe", lease_seconds=60,
                                  now=killed_at) is None
        lapses_in = (job.locked_until - utcnow()).total_seconds()
    time.sleep(max(lapses_in, 0) + 0.2)

    second = _worker(database_url, tmp_path / "data", once=True)
    output, _ = second.communicate(timeout=240)
    assert second.returncode == 0, output

    after = _per_prompt(committed)
    assert set(after.values()) == {N}  # every prompt filled exactly once
    assert all(after[p] == N for p, c in stored.items() if c)  # the stored batches are still there
    with unit_of_work(committed) as session:
        job = session.scalars(select(Job)).one()
        assert (job.status, job.attempts) == (JobStatus.DONE, 2)
        run = session.scalars(select(GenerationRun)).one()
        assert (run.status, run.done_prompts, run.total_prompts) == (RunStatus.DONE, prompts, prompts)
        assert session.scalar(select(func.count(Item.id))) == prompts  # one pair per prompt, none twice


def test_two_worker_processes_share_one_queue_without_duplicates(
        committed: sessionmaker[Session], database_url: str, tmp_path: Path) -> None:
    model_dir = save_tiny_model(tmp_path / "tiny")
    jobs = 4
    _projects(committed, model_dir, count=jobs, prompts=6, max_new_tokens=8)

    # a lease long enough for a loaded machine: a lapsed lease would (rightly) hand a job to the other worker
    workers = [_worker(database_url, tmp_path / f"data{i}", once=True, lease_seconds=120) for i in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]

    assert [w.returncode for w in workers] == [0, 0], outputs
    handled = [int(out.rsplit("stopped after ", 1)[1].split(" ")[0]) for out in outputs]
    assert sum(handled) == jobs and min(handled) >= 1, handled  # both took jobs, none ran twice
    assert set(_per_prompt(committed).values()) == {N}
    with unit_of_work(committed) as session:
        assert {(j.status, j.attempts) for j in session.scalars(select(Job))} == {(JobStatus.DONE, 1)}
        assert {r.status for r in session.scalars(select(GenerationRun))} == {RunStatus.DONE}
