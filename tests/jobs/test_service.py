from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.errors import Conflict
from app.jobs import service as jobs_service
from app.jobs.models import Job, JobStatus


def _claim(session: Session, worker_id: str, now: datetime) -> Job | None:
    return jobs_service.claim(session, kinds=["echo"], worker_id=worker_id, lease_seconds=10, now=now)


def _later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def test_enqueued_job_is_claimed_once_with_a_lease(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={"x": 1})
    now = utcnow()
    claimed = jobs_service.claim(db, kinds=["echo"], worker_id="w1", lease_seconds=30, now=now)
    assert claimed is not None and claimed.id == job.id
    assert (claimed.status, claimed.attempts, claimed.locked_by) == (JobStatus.RUNNING, 1, "w1")
    assert claimed.locked_until == now + timedelta(seconds=30)
    assert claimed.payload == {"x": 1}
    assert jobs_service.claim(db, kinds=["echo"], worker_id="w2", lease_seconds=30, now=now) is None


def test_claim_skips_other_kinds_and_jobs_not_yet_due(db: Session) -> None:
    jobs_service.enqueue(db, kind="other", payload={})
    jobs_service.enqueue(db, kind="echo", payload={}, run_after=_later(60))
    assert jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=utcnow()) is None
    due = jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=_later(61))
    assert due is not None and due.kind == "echo"


def test_running_job_whose_lease_lapsed_is_claimed_again(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={})
    t0 = utcnow()
    assert _claim(db, "dead", t0) is not None
    assert _claim(db, "w2", t0 + timedelta(seconds=9)) is None
    again = _claim(db, "w2", t0 + timedelta(seconds=11))
    assert again is not None and again.id == job.id
    assert (again.attempts, again.locked_by) == (2, "w2")
    # the presumed-dead worker can no longer touch it
    later = t0 + timedelta(seconds=12)
    assert not jobs_service.heartbeat(db, job_id=job.id, worker_id="dead", lease_seconds=10, now=later)
    assert not jobs_service.complete(db, job_id=job.id, worker_id="dead", now=later)
    assert jobs_service.fail(db, job_id=job.id, worker_id="dead", error="x", now=later) is None
    assert jobs_service.complete(db, job_id=job.id, worker_id="w2", now=later)
    assert job.status == JobStatus.DONE and job.finished_at == later


def test_lapsed_job_with_no_attempts_left_is_failed_not_run(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={}, max_attempts=1)
    t0 = utcnow()
    assert _claim(db, "dead", t0) is not None
    assert _claim(db, "w2", t0 + timedelta(seconds=11)) is None
    assert job.status == JobStatus.FAILED
    assert job.last_error is not None and "dead" in job.last_error


def test_heartbeat_extends_the_lease_and_records_progress(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={})
    t0 = utcnow()
    jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=10, now=t0)
    t1 = t0 + timedelta(seconds=8)
    assert jobs_service.heartbeat(db, job_id=job.id, worker_id="w", lease_seconds=10, now=t1,
                                  progress={"done": 3, "total": 9})
    assert job.locked_until == t1 + timedelta(seconds=10)
    assert job.progress == {"done": 3, "total": 9}
    assert _claim(db, "x", t0 + timedelta(seconds=15)) is None


def test_failures_back_off_exponentially_then_fail_for_good(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={}, max_attempts=3)
    now = utcnow()
    for attempt, backoff in [(1, 2), (2, 4)]:
        claimed = jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=now)
        assert claimed is not None and claimed.attempts == attempt
        jobs_service.fail(db, job_id=job.id, worker_id="w", error=f"boom {attempt}", now=now)
        assert (job.status, job.run_after, job.last_error) == (
            JobStatus.QUEUED, now + timedelta(seconds=backoff), f"boom {attempt}")
        assert jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30,
                                  now=now + timedelta(seconds=backoff - 1)) is None
        now += timedelta(seconds=backoff)
    assert jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=now) is not None
    jobs_service.fail(db, job_id=job.id, worker_id="w", error="boom 3", now=now)
    assert (job.status, job.attempts, job.last_error, job.finished_at) == (JobStatus.FAILED, 3, "boom 3", now)
    assert jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=_later(10_000)) is None


def test_backoff_is_capped_at_five_minutes(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={}, max_attempts=20)
    job.attempts = 11
    now = utcnow()
    jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=now)
    jobs_service.fail(db, job_id=job.id, worker_id="w", error="boom", now=now)
    assert job.run_after == now + timedelta(seconds=300)


def test_fail_without_retry_fails_at_once(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={})
    now = utcnow()
    jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=now)
    jobs_service.fail(db, job_id=job.id, worker_id="w", error="no such model", now=now, retry=False)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)


def test_release_requeues_without_spending_an_attempt(db: Session) -> None:
    job = jobs_service.enqueue(db, kind="echo", payload={})
    now = utcnow()
    jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=now)
    assert jobs_service.release(db, job_id=job.id, worker_id="w", now=now)
    assert (job.status, job.attempts, job.locked_by) == (JobStatus.QUEUED, 0, None)
    assert jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=now) is not None


def test_cancelled_job_is_never_claimed_and_its_worker_loses_it(db: Session) -> None:
    queued = jobs_service.enqueue(db, kind="echo", payload={})
    jobs_service.cancel(db, job_id=queued.id, now=utcnow())
    assert queued.status == JobStatus.CANCELLED
    assert jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=utcnow()) is None
    with pytest.raises(Conflict):
        jobs_service.cancel(db, job_id=queued.id, now=utcnow())

    running = jobs_service.enqueue(db, kind="echo", payload={})
    jobs_service.claim(db, kinds=["echo"], worker_id="w", lease_seconds=30, now=utcnow())
    jobs_service.cancel(db, job_id=running.id, now=utcnow())
    assert not jobs_service.heartbeat(db, job_id=running.id, worker_id="w", lease_seconds=30, now=utcnow())


def test_concurrent_claimers_never_get_the_same_job(committed: sessionmaker[Session]) -> None:
    with unit_of_work(committed) as session:
        for i in range(30):
            jobs_service.enqueue(session, kind="echo", payload={"i": i})
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        mine = claimed.setdefault(name, [])
        start.wait()
        while True:
            with unit_of_work(committed) as session:
                job = _claim(session, name, utcnow())
                if job is None:
                    return
                mine.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = [job_id for ids in claimed.values() for job_id in ids]
    assert len(every) == 30 and len(set(every)) == 30
    with unit_of_work(committed) as session:
        jobs = session.query(Job).all()
        assert all(j.status == JobStatus.RUNNING and j.attempts == 1 for j in jobs)
        owner = {j.id: j.locked_by for j in jobs}
    assert all(owner[job_id] == name for name, ids in claimed.items() for job_id in ids)
