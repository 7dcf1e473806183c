"""The worker loop: claim a job in one short transaction, run its handler with no transaction open,
record the outcome in another. A handler's exception fails the job (retried with backoff), never the loop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.jobs import service as jobs_service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobData:
    """What a handler gets: a plain copy of the claimed job, and what it needs to heartbeat."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    worker_id: str
    lease_seconds: int
    stop: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


Handler = Callable[[sessionmaker[Session], JobData], None]


class LeaseLost(Exception):
    """The job was reclaimed by another worker or cancelled: stop without recording an outcome."""


class Interrupted(Exception):
    """The worker is shutting down: the job goes back to the queue without spending an attempt."""


class PermanentFailure(Exception):
    """Retrying cannot help (e.g. the model does not exist): fail the job now."""


def run_worker(session_factory: sessionmaker[Session], handlers: dict[str, Handler], *, worker_id: str,
               poll_seconds: float, lease_seconds: int, stop: threading.Event,
               max_jobs: int | None = None, exit_when_idle: bool = False) -> int:
    """Process jobs until `stop` is set (SIGTERM/SIGINT set it in the main thread), `max_jobs` were
    handled, or (with `exit_when_idle`) nothing is due; else sleeps `poll_seconds` when nothing is due.
    Returns how many jobs were handled."""
    processed = 0
    with _stop_on_signals(stop):
        while not stop.is_set() and (max_jobs is None or processed < max_jobs):
            job = _claim(session_factory, list(handlers), worker_id, lease_seconds, stop)
            if job is None:
                if exit_when_idle:
                    break
                stop.wait(poll_seconds)
                continue
            _run_one(session_factory, handlers[job.kind], job)
            processed += 1
    return processed


def _claim(factory: sessionmaker[Session], kinds: list[str], worker_id: str, lease_seconds: int,
           stop: threading.Event) -> JobData | None:
    try:
        with unit_of_work(factory) as session:
            job = jobs_service.claim(session, kinds=kinds, worker_id=worker_id, lease_seconds=lease_seconds,
                                     now=utcnow())
            if job is None:
                return None
            return JobData(id=job.id, kind=job.kind, payload=dict(job.payload), attempts=job.attempts,
                           max_attempts=job.max_attempts, worker_id=worker_id, lease_seconds=lease_seconds,
                           stop=stop)
    except OperationalError as exc:  # the database is down or restarting: wait and try again
        log.warning("cannot claim a job: %s", exc)
        return None


def _run_one(factory: sessionmaker[Session], handler: Handler, job: JobData) -> None:
    log.info("job %d (%s) attempt %d/%d started", job.id, job.kind, job.attempts, job.max_attempts)
    try:
        handler(factory, job)
    except LeaseLost:
        log.warning("job %d: lease lost (reclaimed or cancelled); leaving it as it is", job.id)
        return
    except Interrupted:
        log.info("job %d interrupted by shutdown; handing it back", job.id)
        _record(factory, job, lambda s: jobs_service.release(s, job_id=job.id, worker_id=job.worker_id,
                                                               now=utcnow()))
        return
    except Exception as exc:
        log.exception("job %d (%s) failed", job.id, job.kind)
        message = f"{type(exc).__name__}: {exc}"
        retry = not isinstance(exc, PermanentFailure)
        _record(factory, job, lambda s: jobs_service.fail(s, job_id=job.id, worker_id=job.worker_id,
                                                            error=message, now=utcnow(), retry=retry))
        return
    _record(factory, job, lambda s: jobs_service.complete(s, job_id=job.id, worker_id=job.worker_id,
                                                            now=utcnow()))
    log.info("job %d (%s) done", job.id, job.kind)


def _record(factory: sessionmaker[Session], job: JobData, outcome: Callable[[Session], object]) -> None:
    """Store the outcome; if the database is unreachable the lease lapses and the job is claimed again."""
    try:
        with unit_of_work(factory) as session:
            outcome(session)
    except OperationalError as exc:
        log.error("job %d: cannot record its outcome (%s); it is retried when its lease lapses", job.id, exc)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` (the current job finishes or hands itself back); a second signal
    raises KeyboardInterrupt. Signal handlers can only be installed from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("signal %d: stopping after the current job", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
