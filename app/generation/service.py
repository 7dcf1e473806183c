"""Generation: runs that fill a project's prompts with model candidates, their jobs and their progress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import cast, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit import service as audit_service
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.generation import configs as configs_service
from app.generation import flags
from app.generation.models import BackendKind, GenerationRun, RunStatus
from app.generation.schemas import ConfigData, PanelState, PromptData, RunOut, RunPlan
from app.jobs import service as jobs_service
from app.projects import service as projects_service
from app.projects.models import CandidateSource, Project

JOB_KIND = "generate"
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
COUNT_LIMIT = 10_000_000
BUSY = "a generation run of this project is already queued or running"


class SampleLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def sample_index(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def tokens(self) -> int: ...


def start_run(session: Session, *, project: Project, actor: User, model: str | None = None) -> GenerationRun:
    """A queued run for the prompts lacking candidates under any of the project's configs, and its job,
    in the caller's transaction. `model` overrides the model of a project without configs.

    Conflict while another run of the project is active (a partial unique index backs the check).
    """
    configs = configs_service.list_configs(session, project=project)
    if model is not None and len(configs) == 1 and configs[0].implicit:
        configs = [replace(configs[0], model=model.strip())]
    reconcile_runs(session, project_id=project.id, now=utcnow())
    if latest_run(session, project_id=project.id, active_only=True) is not None:
        raise Conflict(BUSY)
    total = remaining_prompts(session, project=project, configs=configs)
    if total == 0:
        raise Invalid("every prompt already has its candidates: import prompts first")
    run = GenerationRun(project_id=project.id, status=RunStatus.QUEUED,
                        model=", ".join(c.model for c in configs)[:300],
                        params={"configs": [asdict(c) for c in configs]}, total_prompts=total,
                        done_prompts=0, created_by_id=actor.id, tokens=0, failures=[])
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError as exc:  # a concurrent start won the race
        raise Conflict(BUSY) from exc
    run.job_id = jobs_service.enqueue(session, kind=JOB_KIND, payload={"run_id": run.id}).id
    session.flush()
    audit_service.record(session, actor_id=actor.id, action="generation.start", project_id=project.id,
                         target=f"generation run {run.id}",
                         after={"model": run.model, "configs": [c.key for c in configs],
                                "total_prompts": total})
    return run


def remaining_prompts(session: Session, *, project: Project,
                      configs: Sequence[ConfigData] | None = None) -> int:
    """How many (prompt, config) pairs still lack their model candidates."""
    if configs is None:
        configs = configs_service.list_configs(session, project=project)
    return sum(len(projects_service.prompts_without_candidates(
        session, project_id=project.id, config_key=c.key, n=project.candidates_per_prompt, limit=COUNT_LIMIT))
        for c in configs)


def list_runs(session: Session, *, project_id: int, limit: int = 10) -> list[GenerationRun]:
    query = (select(GenerationRun).where(GenerationRun.project_id == project_id)
             .order_by(GenerationRun.id.desc()).limit(limit))
    return list(session.scalars(query))


def latest_run(session: Session, *, project_id: int, active_only: bool = False) -> GenerationRun | None:
    query = select(GenerationRun).where(GenerationRun.project_id == project_id)
    if active_only:
        query = query.where(GenerationRun.status.in_(ACTIVE))
    return session.scalar(query.order_by(GenerationRun.id.desc()).limit(1))


def get_run(session: Session, *, project_id: int, run_id: int) -> GenerationRun:
    run = session.get(GenerationRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound("no such generation run")
    return run


def reconcile_runs(session: Session, *, project_id: int, now: datetime) -> int:
    """Fail the project's active runs whose job ended without them (cancelled, or its worker died on
    the last attempt), so they neither show as running forever nor block a new run."""
    fixed = 0
    for run in session.scalars(select(GenerationRun).where(GenerationRun.project_id == project_id,
                                                           GenerationRun.status.in_(ACTIVE))):
        job = jobs_service.find(session, run.job_id) if run.job_id is not None else None
        if job is not None and job.status in jobs_service.ACTIVE:
            continue
        reason = f"the job {job.status}" if job is not None else "the job is gone"
        detail = f": {job.last_error}" if job is not None and job.last_error else ""
        _finish(run, RunStatus.FAILED, now, error=f"{reason} before the run finished{detail}")
        fixed += 1
    session.flush()
    return fixed


def run_views(session: Session, *, project_id: int, now: datetime, limit: int = 10) -> list[RunOut]:
    """The project's runs, newest first, with their progress; runs orphaned by their job are failed first."""
    reconcile_runs(session, project_id=project_id, now=now)
    return [run_out(run, now=now) for run in list_runs(session, project_id=project_id, limit=limit)]


def panel_state(session: Session, *, project: Project, now: datetime) -> PanelState:
    runs = run_views(session, project_id=project.id, now=now, limit=5)
    active = any(run.status in ACTIVE for run in runs)
    remaining = None if active else remaining_prompts(session, project=project)
    return PanelState(runs=runs, active=active, remaining=remaining)


def progress(run: GenerationRun, *, now: datetime) -> dict[str, Any]:
    """done/total/status/error, percent, prompts per second since generation began, ETA in seconds."""
    done, total = min(run.done_prompts, run.total_prompts), run.total_prompts
    rate: float | None = None
    token_rate: float | None = None
    if run.started_at is not None and done > 0:
        elapsed = ((run.finished_at or now) - run.started_at).total_seconds()
        rate = done / elapsed if elapsed > 0 else None
        token_rate = (run.tokens or 0) / elapsed if elapsed > 0 else None
    eta = (total - done) / rate if rate and run.status == RunStatus.RUNNING else None
    percent = 100.0 if run.status == RunStatus.DONE else (100.0 * done / total if total else 0.0)
    return {"status": run.status, "done": done, "total": total, "error": run.error,
            "percent": round(percent, 1), "prompts_per_second": rate, "eta_seconds": eta,
            "tokens_per_second": token_rate,
            "active": run.status in ACTIVE}


def run_out(run: GenerationRun, *, now: datetime) -> RunOut:
    info = progress(run, now=now)
    return RunOut(id=run.id, project_id=run.project_id, status=run.status, model=run.model, params=run.params,
                  total_prompts=info["total"], done_prompts=info["done"], percent=info["percent"],
                  prompts_per_second=info["prompts_per_second"], eta_seconds=info["eta_seconds"],
                  tokens=run.tokens or 0, tokens_per_second=info["tokens_per_second"],
                  failures=list(run.failures or []),
                  error=run.error, created_at=run.created_at, started_at=run.started_at,
                  finished_at=run.finished_at)


def cancel_run(session: Session, *, project: Project, run_id: int, actor: User,
               now: datetime) -> GenerationRun:
    """Cancel a queued or running run and its job; a worker on it stops at its next batch (its heartbeat
    fails). What was stored stays. Conflict when the run has already ended."""
    run = get_run(session, project_id=project.id, run_id=run_id)
    run = _run(session, run.id)
    if run.status not in ACTIVE:
        raise Conflict(f"the run is already {run.status}")
    job = jobs_service.find(session, run.job_id) if run.job_id is not None else None
    if job is not None and job.status in jobs_service.ACTIVE:
        jobs_service.cancel(session, job_id=job.id, now=now)
    _finish(run, RunStatus.CANCELLED, now, error=None)
    session.flush()
    audit_service.record(session, actor_id=actor.id, action="generation.cancel", project_id=project.id,
                         target=f"generation run {run.id}")
    return run


def retry_run(session: Session, *, project: Project, run_id: int, actor: User) -> GenerationRun:
    """A new run for what the ended run `run_id` left undone (its failed prompts included)."""
    run = get_run(session, project_id=project.id, run_id=run_id)
    if run.status in ACTIVE:
        raise Conflict("the run is still active: cancel it first")
    return start_run(session, project=project, actor=actor)


# -- the worker's steps: each runs in its own short transaction ------------------------------------


def begin_run(session: Session, *, run_id: int) -> RunPlan | None:
    """Mark the run running and recount what is left; None when the run is gone or already finished."""
    run = session.get(GenerationRun, run_id, with_for_update=True, populate_existing=True)
    if run is None or run.status not in ACTIVE:
        return None
    project = _project(session, run.project_id)
    stored = run.params.get("configs")  # absent on runs queued before configs existed
    configs = ([ConfigData(**{**c, "backend": BackendKind(c["backend"])}) for c in stored] if stored
               else configs_service.list_configs(session, project=project))
    run.status = RunStatus.RUNNING
    run.total_prompts = run.done_prompts + remaining_prompts(session, project=project, configs=configs)
    session.flush()
    return RunPlan(run_id=run.id, project_id=project.id, model=run.model, params=dict(run.params),
                   candidates_per_prompt=project.candidates_per_prompt, configs=configs)


def mark_started(session: Session, *, run_id: int, now: datetime) -> None:
    """The first model is loaded: generating begins (the rate and ETA count from here)."""
    run = _run(session, run_id)
    run.started_at = run.started_at or now
    session.flush()


def next_prompts(session: Session, *, plan: RunPlan, config_key: str, limit: int) -> list[PromptData]:
    prompts = projects_service.prompts_without_candidates(
        session, project_id=plan.project_id, config_key=config_key, n=plan.candidates_per_prompt, limit=limit)
    return [PromptData(id=p.id, messages=[dict(m) for m in p.messages]) for p in prompts]


def store_batch(session: Session, *, plan: RunPlan, config_key: str,
                results: Sequence[tuple[int, Sequence[SampleLike]]], model_id: str, revision: str,
                params: dict[str, Any], failures: Sequence[dict[str, Any]] = ()) -> int:
    """Store each prompt's samples (with their flags); build a prompt's items once every config of the run
    has answered it. Returns the prompts that got new candidates; `failures` are recorded on the run.

    Idempotent: a sample already stored (same prompt, config and index) is skipped by the unique key.
    """
    project = _project(session, plan.project_id)
    keys = [c.key for c in plan.configs]
    filled = tokens = 0
    for prompt_id, samples in results:
        created = [projects_service.add_candidate(
            session, prompt_id=prompt_id, text=s.text, source=CandidateSource.MODEL, config_key=config_key,
            sample_index=s.sample_index, model=model_id, revision=revision, params=params, seed=s.seed,
            flags=flags.flag(s.text, tokens=s.tokens, max_new_tokens=int(params.get("max_new_tokens", 0))))
            for s in samples]
        filled += any(c is not None for c in created)
        tokens += sum(s.tokens for s, c in zip(samples, created, strict=True) if c is not None)
        if projects_service.has_candidates(session, prompt_id=prompt_id, config_keys=keys,
                                           n=plan.candidates_per_prompt):
            projects_service.build_items(session, project=project, prompt_id=prompt_id)
    values: dict[str, Any] = {"done_prompts": GenerationRun.done_prompts + filled,
                              "tokens": GenerationRun.tokens + tokens}
    if failures:
        values["failures"] = GenerationRun.failures.op("||")(cast(list(failures), JSONB))
    session.execute(update(GenerationRun).where(GenerationRun.id == plan.run_id).values(**values))
    session.flush()
    return filled


def finish_run(session: Session, *, run_id: int, now: datetime) -> None:
    run = _run(session, run_id)
    if run.status in ACTIVE:  # a run cancelled after the last batch stays cancelled
        _finish(run, RunStatus.DONE, now, error=None)
    session.flush()


def fail_run(session: Session, *, run_id: int, error: str, final: bool, now: datetime) -> None:
    """Record a failed attempt: the run fails for good on the last attempt, else waits for the retry."""
    run = _run(session, run_id)
    if final:
        _finish(run, RunStatus.FAILED, now, error=error)
    else:
        run.status = RunStatus.QUEUED
        run.error = f"retrying after: {error}"
    session.flush()


def requeue_run(session: Session, *, run_id: int) -> None:
    _run(session, run_id).status = RunStatus.QUEUED
    session.flush()


def _project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("no such project")
    return project


def _run(session: Session, run_id: int) -> GenerationRun:
    run = session.get(GenerationRun, run_id, with_for_update=True, populate_existing=True)
    if run is None:
        raise NotFound("no such generation run")
    return run


def _finish(run: GenerationRun, status: RunStatus, now: datetime, *, error: str | None) -> None:
    run.status = status
    run.error = error
    run.finished_at = now

