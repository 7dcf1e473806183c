from __future__ import annotations

import os
import signal
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.jobs import service as jobs_service
from app.jobs.models import Job, JobStatus
from app.jobs.runner import Handler, Interrupted, JobData, PermanentFailure, run_worker


def _enqueue(factory: sessionmaker[Session], kind: str, **payload: object) -> int:
    with unit_of_work(factory) as session:
        return jobs_service.enqueue(session, kind=kind, payload=dict(payload)).id


def _job(factory: sessionmaker[Session], job_id: int) -> Job:
    with unit_of_work(factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _run(factory: sessionmaker[Session], handlers: dict[str, Handler], max_jobs: int | None = None) -> int:
    return run_worker(factory, handlers, worker_id="test-worker", poll_seconds=0.01, lease_seconds=60,
                      stop=threading.Event(), max_jobs=max_jobs)


def test_handler_gets_plain_job_data_and_the_job_is_marked_done(committed: sessionmaker[Session]) -> None:
    job_id = _enqueue(committed, "echo", word="hi")
    seen: list[JobData] = []
    assert _run(committed, {"echo": lambda factory, job: seen.append(job)}, max_jobs=1) == 1
    assert [(j.id, j.kind, j.payload, j.attempts, j.worker_id) for j in seen] == [
        (job_id, "echo", {"word": "hi"}, 1, "test-worker")]
    job = _job(committed, job_id)
    assert (job.status, job.locked_by) == (JobStatus.DONE, None)
    assert job.finished_at is not None


def test_handler_runs_with_no_transaction_holding_the_job(committed: sessionmaker[Session]) -> None:
    job_id = _enqueue(committed, "probe")

    def probe(factory: sessionmaker[Session], job: JobData) -> None:
        # NOWAIT raises if the claim's transaction (or any other) still held the row lock
        with unit_of_work(factory) as session:
            row = session.scalar(select(Job).where(Job.id == job.id).with_for_update(nowait=True))
            assert row is not None and row.status == JobStatus.RUNNING

    _run(committed, {"probe": probe}, max_jobs=1)
    assert _job(committed, job_id).status == JobStatus.DONE


def test_a_failing_handler_fails_its_job_and_the_loop_goes_on(committed: sessionmaker[Session]) -> None:
    bad = _enqueue(committed, "bad")
    good = _enqueue(committed, "good")

    def explode(factory: sessionmaker[Session], job: JobData) -> None:
        raise ValueError("the handler broke")

    assert _run(committed, {"bad": explode, "good": lambda f, j: None}, max_jobs=2) == 2
    failed = _job(committed, bad)
    assert failed.status == JobStatus.QUEUED  # retried later, with backoff
    assert failed.attempts == 1
    assert failed.last_error == "ValueError: the handler broke"
    assert _job(committed, good).status == JobStatus.DONE


def test_permanent_failure_is_not_retried(committed: sessionmaker[Session]) -> None:
    job_id = _enqueue(committed, "bad")

    def hopeless(factory: sessionmaker[Session], job: JobData) -> None:
        raise PermanentFailure("no such model")

    _run(committed, {"bad": hopeless}, max_jobs=1)
    assert _job(committed, job_id).status == JobStatus.FAILED


def test_interrupted_job_goes_back_to_the_queue_unspent(committed: sessionmaker[Session]) -> None:
    job_id = _enqueue(committed, "long")

    def interrupted(factory: sessionmaker[Session], job: JobData) -> None:
        raise Interrupted("shutting down")

    _run(committed, {"long": interrupted}, max_jobs=1)
    job = _job(committed, job_id)
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 0)


def test_sigterm_stops_the_loop_after_the_current_job(committed: sessionmaker[Session]) -> None:
    first = _enqueue(committed, "echo")
    second = _enqueue(committed, "echo")
    before = signal.getsignal(signal.SIGTERM)
    stops: list[bool] = []

    def terminate(factory: sessionmaker[Session], job: JobData) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        stops.append(job.stop.is_set())

    assert _run(committed, {"echo": terminate}) == 1
    assert stops == [True]  # the handler can see the stop request
    assert _job(committed, first).status == JobStatus.DONE
    assert _job(committed, second).status == JobStatus.QUEUED
    assert signal.getsignal(signal.SIGTERM) is before


def test_idle_worker_returns_once_stopped_from_another_thread(committed: sessionmaker[Session]) -> None:
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(run_worker(
        committed, {"echo": lambda f, j: None}, worker_id="t", poll_seconds=0.05, lease_seconds=60,
        stop=stop)))
    worker.start()
    stop.set()
    worker.join(timeout=10)
    assert result == [0]


def test_exit_when_idle_drains_the_queue_and_returns(committed: sessionmaker[Session]) -> None:
    ids = [_enqueue(committed, "echo", i=i) for i in range(3)]
    handled = run_worker(committed, {"echo": lambda f, j: None}, worker_id="t", poll_seconds=60,
                         lease_seconds=60, stop=threading.Event(), exit_when_idle=True)
    assert handled == 3
    assert {_job(committed, job_id).status for job_id in ids} == {JobStatus.DONE}
