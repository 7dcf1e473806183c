"""Jobs: background work as rows, enqueued in the caller's transaction and claimed with SKIP LOCKED."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.jobs.models import Job, JobStatus

MAX_BACKOFF_SECONDS = 300
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def enqueue(session: Session, *, kind: str, payload: dict[str, Any], max_attempts: int = 5,
            run_after: datetime | None = None) -> Job:
    """A queued job, flushed in the caller's transaction: it exists exactly when the caller's change does.

    Without `run_after` it is claimable from the database's now() (the transaction's start).
    """
    job = Job(kind=kind, payload=payload, status=JobStatus.QUEUED, attempts=0, max_attempts=max_attempts,
              progress={})
    if run_after is not None:
        job.run_after = run_after
    session.add(job)
    session.flush()
    return job


def find(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def claim(session: Session, *, kinds: Collection[str], worker_id: str, lease_seconds: int,
          now: datetime) -> Job | None:
    """The next due job of one of `kinds`, leased to `worker_id` until now + lease_seconds.

    Due: queued with run_after <= now, or running with a lapsed lease (its worker died). FOR UPDATE
    SKIP LOCKED, so concurrent claimers never get the same job. A lapsed job with no attempts left is
    marked failed instead of being run again.
    """
    claimable = or_(
        and_(Job.status == JobStatus.QUEUED, Job.run_after <= now),
        and_(Job.status == JobStatus.RUNNING, Job.locked_until < now),
    )
    query = (select(Job).where(Job.kind.in_(list(kinds)), claimable)
             .order_by(Job.run_after, Job.id).limit(1).with_for_update(skip_locked=True))
    while (job := session.scalar(query)) is not None:
        if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
            job.last_error = f"worker {job.locked_by} stopped responding and no attempts are left"
            _finish(job, JobStatus.FAILED, now)
            session.flush()
            continue
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.locked_by = worker_id
        job.locked_until = now + timedelta(seconds=lease_seconds)
        session.flush()
        return job
    return None


def _owned(session: Session, job_id: int, worker_id: str) -> Job | None:
    """The job, row-locked, if `worker_id` still holds it; None when it was reclaimed or cancelled."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.status != JobStatus.RUNNING or job.locked_by != worker_id:
        return None
    return job


def heartbeat(session: Session, *, job_id: int, worker_id: str, lease_seconds: int, now: datetime,
              progress: dict[str, Any] | None = None) -> bool:
    """Extend the lease (and record progress). False when the worker no longer holds the job."""
    job = _owned(session, job_id, worker_id)
    if job is None:
        return False
    job.locked_until = now + timedelta(seconds=lease_seconds)
    if progress is not None:
        job.progress = progress
    session.flush()
    return True


def complete(session: Session, *, job_id: int, worker_id: str, now: datetime) -> bool:
    job = _owned(session, job_id, worker_id)
    if job is None:
        return False
    _finish(job, JobStatus.DONE, now)
    session.flush()
    return True


def fail(session: Session, *, job_id: int, worker_id: str, error: str, now: datetime,
         retry: bool = True) -> Job | None:
    """Record the error; queue a retry after min(2**attempts, 300) s, or fail it for good when
    attempts are spent (or `retry` is False). None when the worker no longer holds the job."""
    job = _owned(session, job_id, worker_id)
    if job is None:
        return None
    job.last_error = error
    if retry and job.attempts < job.max_attempts:
        job.status = JobStatus.QUEUED
        job.run_after = now + timedelta(seconds=min(2 ** job.attempts, MAX_BACKOFF_SECONDS))
        job.locked_by = None
        job.locked_until = None
    else:
        _finish(job, JobStatus.FAILED, now)
    session.flush()
    return job


def release(session: Session, *, job_id: int, worker_id: str, now: datetime) -> bool:
    """Hand a job back unfinished (worker shutting down): queued again now, the attempt not counted."""
    job = _owned(session, job_id, worker_id)
    if job is None:
        return False
    job.status = JobStatus.QUEUED
    job.attempts = max(job.attempts - 1, 0)
    job.run_after = now
    job.locked_by = None
    job.locked_until = None
    session.flush()
    return True


def cancel(session: Session, *, job_id: int, now: datetime) -> Job:
    """Cancel a queued or running job; a running worker notices at its next heartbeat."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        raise NotFound("no such job")
    if job.status not in ACTIVE:
        raise Conflict(f"the job is already {job.status}")
    _finish(job, JobStatus.CANCELLED, now)
    session.flush()
    return job


def _finish(job: Job, status: JobStatus, now: datetime) -> None:
    job.status = status
    job.finished_at = now
    job.locked_by = None
    job.locked_until = None
