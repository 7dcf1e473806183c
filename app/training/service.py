"""Training: reward-model runs and their jobs, reward scores on candidates, the pairs where the model
disagrees with the annotators, and the "uncertain first" queue order."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Float, func, select, update
from sqlalchemy.orm import Session, aliased

from app.accounts.models import User
from app.annotation.models import Judgement
from app.audit import service as audit_service
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.jobs import service as jobs_service
from app.projects.models import Candidate, Item, ItemKind, ItemPurpose, Project, Prompt
from app.training.data import render
from app.training.models import TrainingRun, TrainingStatus
from app.training.schemas import Disagreement, ScoreInput, TrainingForm

TRAIN_JOB = "train_rm"
SCORE_JOB = "score_rm"
ACTIVE = (TrainingStatus.QUEUED, TrainingStatus.RUNNING)
ARCHIVE = "model.zip"  # written by the worker beside metrics.json: model/, metrics.json, reliability.png
RELIABILITY_PNG = "reliability.png"


# --- reward scores -------------------------------------------------------------------------------------

def score_inputs(session: Session, *, project_id: int, after_id: int, limit: int) -> list[ScoreInput]:
    """The project's next `limit` candidates by id after `after_id`, rendered as in a TRL export."""
    rows = session.execute(
        select(Candidate.id, Prompt.messages, Candidate.text).join(Prompt, Prompt.id == Candidate.prompt_id)
        .where(Prompt.project_id == project_id, Candidate.id > after_id).order_by(Candidate.id).limit(limit)
    ).all()
    return [ScoreInput(candidate_id=cid, prompt=render(_chat(messages)),
                       response=render([{"role": "assistant", "content": text}]))
            for cid, messages, text in rows]


def _chat(messages: Any) -> list[dict[str, Any]]:
    return [{"role": str(m.get("role", "user")), "content": m.get("content", "")}
            for m in messages or [] if isinstance(m, dict)]


def store_scores(session: Session, *, scores: dict[int, float], model_label: str) -> None:
    """Write each candidate's reward (one executemany UPDATE by primary key)."""
    if not scores:
        return
    session.execute(update(Candidate), [
        {"id": cid, "reward_score": value, "reward_model": model_label[:300]} for cid, value in scores.items()
    ])
    session.flush()


def refresh_gaps(session: Session, *, project_id: int) -> int:
    """items.reward_gap = |r(a) - r(b)| for the project's scored pairs; returns how many were set."""
    a, b = aliased(Candidate), aliased(Candidate)
    gap = (select(func.abs(a.reward_score - b.reward_score)).where(
        a.id == Item.candidate_a_id, b.id == Item.candidate_b_id).scalar_subquery())
    result = session.execute(update(Item).where(Item.project_id == project_id, Item.kind == ItemKind.PAIR)
                             .values(reward_gap=gap).execution_options(synchronize_session=False))
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def disagreements(session: Session, *, project: Project, min_confidence: float = 0.8,
                  limit: int = 100) -> list[Disagreement]:
    """Regular pairs with a human majority (more a than b votes, or more b) that the reward model ranks
    the other way with sigmoid(|Δr|) >= min_confidence; the most confident first."""
    if not 0.5 <= min_confidence < 1.0:
        raise Invalid("min_confidence must be in [0.5, 1)", field="min_confidence")
    threshold = math.log(min_confidence / (1.0 - min_confidence))
    votes = (select(Judgement.item_id,
                    func.count().filter(Judgement.choice == "a").label("a"),
                    func.count().filter(Judgement.choice == "b").label("b"))
             .where(Judgement.project_id == project.id, Judgement.is_repeat.is_(False))
             .group_by(Judgement.item_id).subquery())
    ca, cb = aliased(Candidate), aliased(Candidate)
    delta = ca.reward_score - cb.reward_score
    human = votes.c.a - votes.c.b
    rows = session.execute(
        select(Item.id, Prompt.messages, ca.text, cb.text, ca.reward_score, cb.reward_score,
               votes.c.a, votes.c.b)
        .join(votes, votes.c.item_id == Item.id).join(Prompt, Prompt.id == Item.prompt_id)
        .join(ca, ca.id == Item.candidate_a_id).join(cb, cb.id == Item.candidate_b_id)
        .where(Item.project_id == project.id, Item.purpose == ItemPurpose.REGULAR, human != 0,
               func.sign(delta) == -func.sign(human.cast(Float)), func.abs(delta) >= threshold)
        .order_by(func.abs(delta).desc(), Item.id).limit(limit)
    ).all()
    return [_disagreement(*row) for row in rows]


def _disagreement(item_id: int, messages: Any, text_a: str, text_b: str, reward_a: float, reward_b: float,
                  votes_a: int, votes_b: int) -> Disagreement:
    return Disagreement(item_id=item_id, prompt=render(_chat(messages)), text_a=text_a, text_b=text_b,
                        reward_a=reward_a, reward_b=reward_b, votes_a=votes_a, votes_b=votes_b,
                        human_choice="a" if votes_a > votes_b else "b",
                        model_choice="a" if reward_a > reward_b else "b",
                        confidence=1.0 / (1.0 + math.exp(-abs(reward_a - reward_b))))


def score_summary(session: Session, *, project_id: int) -> dict[str, Any]:
    """How many candidates carry a score, and from which model (the latest label)."""
    scored, model = session.execute(
        select(func.count(Candidate.id), func.max(Candidate.reward_model))
        .join(Prompt, Prompt.id == Candidate.prompt_id)
        .where(Prompt.project_id == project_id, Candidate.reward_score.is_not(None))
    ).one()
    return {"scored": int(scored), "model": model}


def set_uncertain_first(session: Session, *, project: Project, enabled: bool, actor: User | None) -> None:
    if project.uncertain_first == enabled:
        return
    project.uncertain_first = enabled
    session.flush()
    audit_service.record(session, actor_id=actor.id if actor else None, action="project.queue_order",
                         project_id=project.id, target=f"project {project.id}",
                         after={"uncertain_first": enabled})


def enqueue_run_scoring(session: Session, *, project: Project, run: TrainingRun, actor: User) -> int:
    """A score job for the worker with a finished run's model; returns the job's id."""
    if run.status != TrainingStatus.DONE:
        raise Conflict("only a finished run's model can score candidates")
    label = f"training run {run.id}"
    job = jobs_service.enqueue(session, kind=SCORE_JOB, payload={
        "project_id": project.id, "model_dir": str(Path(run.out_dir) / "model"), "label": label})
    audit_service.record(session, actor_id=actor.id, action="training.score", project_id=project.id,
                         target=label, after={"job_id": job.id})
    return job.id


# --- training runs -------------------------------------------------------------------------------------

def parse_form(values: dict[str, Any]) -> TrainingForm:
    """The form's values checked against TrainingForm's bounds; Invalid names the first bad field."""
    try:
        return TrainingForm.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        details = [{"field": str(e["loc"][0]) if e["loc"] else "", "message": e["msg"]} for e in exc.errors()]
        raise Invalid(f"{field}: {first['msg']}", field=field, details=details) from exc


def start_run(session: Session, *, project: Project, actor: User, form: TrainingForm,
              runs_root: Path) -> TrainingRun:
    """A queued run and its job, in the caller's transaction; Conflict while another run of the
    project is queued or running (one trainer per project keeps the shared machine usable)."""
    reconcile_runs(session, project_id=project.id, now=utcnow())
    busy = session.scalar(select(TrainingRun.id).where(TrainingRun.project_id == project.id,
                                                      TrainingRun.status.in_(ACTIVE)).limit(1))
    if busy is not None:
        raise Conflict(f"training run {busy} of this project is still queued or running")
    run = TrainingRun(project_id=project.id, status=TrainingStatus.QUEUED, export_format="trl",
                      config=form.model_dump(), progress={}, created_by_id=actor.id)
    session.add(run)
    session.flush()
    run.out_dir = str((runs_root / f"project-{project.id}" / f"run-{run.id}").resolve())
    run.job_id = jobs_service.enqueue(session, kind=TRAIN_JOB, payload={"run_id": run.id}, max_attempts=2).id
    session.flush()
    audit_service.record(session, actor_id=actor.id, action="training.start", project_id=project.id,
                         target=f"training run {run.id}", after={"config": run.config})
    return run


def list_runs(session: Session, *, project_id: int, limit: int = 20) -> list[TrainingRun]:
    return list(session.scalars(select(TrainingRun).where(TrainingRun.project_id == project_id)
                                .order_by(TrainingRun.id.desc()).limit(limit)))


def get_run(session: Session, *, project_id: int, run_id: int) -> TrainingRun:
    run = session.get(TrainingRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound("no such training run")
    return run


def begin_run(session: Session, *, run_id: int, now: datetime) -> TrainingRun | None:
    """Mark the run running (again, on a retry); None when it is gone or already finished."""
    run = session.get(TrainingRun, run_id, with_for_update=True)
    if run is None or run.status not in ACTIVE:
        return None
    run.status = TrainingStatus.RUNNING
    run.started_at = now
    run.error = None
    session.flush()
    return run


def record_progress(session: Session, *, run_id: int, progress: dict[str, Any]) -> None:
    session.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(progress=progress))


def finish_run(session: Session, *, run_id: int, metrics: dict[str, Any], now: datetime) -> None:
    run = session.get(TrainingRun, run_id, with_for_update=True)
    if run is None:
        return
    run.status = TrainingStatus.DONE
    run.metrics = metrics
    run.finished_at = now
    session.flush()


def fail_run(session: Session, *, run_id: int, error: str, final: bool, now: datetime) -> None:
    """Record the error; the run stays queued for the job's retry unless this was the last attempt."""
    run = session.get(TrainingRun, run_id, with_for_update=True)
    if run is None:
        return
    run.error = error[:2000]
    run.status = TrainingStatus.FAILED if final else TrainingStatus.QUEUED
    run.finished_at = now if final else None
    session.flush()


def reconcile_runs(session: Session, *, project_id: int, now: datetime) -> None:
    """Fail active runs whose job ended without them (cancelled, or its worker died on the last try)."""
    for run in session.scalars(select(TrainingRun).where(TrainingRun.project_id == project_id,
                                                         TrainingRun.status.in_(ACTIVE))):
        job = jobs_service.find(session, run.job_id) if run.job_id is not None else None
        if job is None or job.status not in jobs_service.ACTIVE:
            run.status = TrainingStatus.FAILED
            run.finished_at = now
            run.error = run.error or "the job ended before the run finished"
    session.flush()


def artifact(run: TrainingRun, name: str) -> Path:
    """A finished run's file (ARCHIVE or the reliability PNG); NotFound when there is none yet."""
    if name not in (ARCHIVE, RELIABILITY_PNG) or run.status != TrainingStatus.DONE:
        raise NotFound("this run has no such file (yet)")
    path = Path(run.out_dir) / name
    if not path.is_file():
        raise NotFound("the run's files are gone from the data directory")
    return path


def download_name(project: Project, run: TrainingRun) -> str:
    """reward-model-<project slug>-run-<id>.zip: letters, digits, '-' and '.' only."""
    slug = re.sub(r"[^a-z0-9]+", "-", project.name.lower()).strip("-")[:40] or "project"
    return f"reward-model-{slug}-run-{run.id}.zip"
