"""The training jobs: "train_rm" (export the project, train, zip the model) and "score_rm" (reward scores
onto the project's candidates). Process module: torch is loaded here, never in the web process.

Long work runs with no transaction open; progress and heartbeats go in short transactions of their own.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db import unit_of_work, utcnow
from app.export import service as export_service
from app.export.schemas import ExportOptions
from app.jobs import service as jobs_service
from app.jobs.runner import Handler, Interrupted, JobData, LeaseLost, PermanentFailure
from app.training import service as training_service
from app.training.data import ExportFormatError
from app.training.model_store import BundledModelMissing
from app.training.scorer import load_reward_model, score_texts
from app.training.trainer import TrainConfig, train_reward_model

log = logging.getLogger(__name__)
SCORE_BATCH = 256
HEARTBEAT_SECONDS = 5.0


def score_project(factory: sessionmaker[Session], *, project_id: int, model_dir: Path, label: str,
                  on_batch: Callable[[int], None] | None = None) -> int:
    """Score every candidate of the project with the model in `model_dir` (batch by batch, each batch
    stored in its own transaction), then refresh the pairs' |Δr|. Returns how many were scored.
    ValueError when `model_dir` holds no reward model."""
    model = load_reward_model(model_dir)
    after, done = 0, 0
    while True:
        with unit_of_work(factory) as session:
            batch = training_service.score_inputs(session, project_id=project_id, after_id=after,
                                                  limit=SCORE_BATCH)
        if not batch:
            break
        rewards = score_texts(model, [c.prompt for c in batch], [c.response for c in batch])
        with unit_of_work(factory) as session:
            scores = {c.candidate_id: r for c, r in zip(batch, rewards, strict=True)}
            training_service.store_scores(session, scores=scores, model_label=label)
        after, done = batch[-1].candidate_id, done + len(batch)
        if on_batch is not None:
            on_batch(done)
    with unit_of_work(factory) as session:
        training_service.refresh_gaps(session, project_id=project_id)
    return done


def handle_score(session_factory: sessionmaker[Session], job: JobData) -> None:
    def beat(done: int) -> None:
        _heartbeat(session_factory, job, {"scored": done})

    try:
        score_project(session_factory, project_id=int(job.payload["project_id"]),
                      model_dir=Path(job.payload["model_dir"]), label=str(job.payload.get("label", "")),
                      on_batch=beat)
    except (ValueError, OSError) as exc:
        raise PermanentFailure(str(exc)) from exc


def handle_train(session_factory: sessionmaker[Session], job: JobData,
                 settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    run_id = int(job.payload["run_id"])
    with unit_of_work(session_factory) as session:
        run = training_service.begin_run(session, run_id=run_id, now=utcnow())
        plan = None if run is None else (run.project_id, Path(run.out_dir), dict(run.config))
    if plan is None:
        log.info("training run %d is gone or finished; nothing to do", run_id)
        return
    project_id, out_dir, config = plan
    try:
        metrics = _train(session_factory, job, settings, project_id, out_dir, config)
    except (LeaseLost, Interrupted):
        raise
    except Exception as exc:
        final = job.last_attempt or isinstance(exc, PermanentFailure)
        with unit_of_work(session_factory) as session:
            training_service.fail_run(session, run_id=run_id, error=f"{type(exc).__name__}: {exc}",
                                      final=final, now=utcnow())
        raise
    with unit_of_work(session_factory) as session:
        training_service.finish_run(session, run_id=run_id, metrics=metrics, now=utcnow())


def _train(factory: sessionmaker[Session], job: JobData, settings: Settings, project_id: int, out_dir: Path,
           config: dict[str, Any]) -> dict[str, Any]:
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a retry starts clean: never a mix of two attempts' files
    out_dir.mkdir(parents=True)
    export = out_dir / "export.jsonl"
    with unit_of_work(factory) as session:
        plan = export_service.plan_export(session, project_id=project_id, options=ExportOptions(format="trl"))
    run = export_service.start(plan, factory=factory, secret=settings.secret_key or None, now=utcnow())
    with export.open("w", encoding="utf-8") as handle:  # the training data, with its dataset card beside
        export_service.write_export(run, handle, card_stem=out_dir / "export")
    last = [0.0]

    def on_step(step: int, total: int, loss: float) -> None:
        if job.stop.is_set():
            raise Interrupted("worker stopping")
        if time.monotonic() - last[0] >= HEARTBEAT_SECONDS or step == total:
            last[0] = time.monotonic()
            _heartbeat(factory, job, {"step": step, "total": total, "loss": loss},
                       run_id=int(job.payload["run_id"]))

    try:
        metrics = train_reward_model(export, out_dir, TrainConfig(**config), progress=False, on_step=on_step)
    except (ExportFormatError, BundledModelMissing, ValueError) as exc:
        raise PermanentFailure(str(exc)) from exc
    _zip(out_dir)
    return metrics


def _zip(out_dir: Path) -> None:
    """out_dir/model.zip: model/, metrics.json and reliability.png (not the export, which names prompts)."""
    with zipfile.ZipFile(out_dir / training_service.ARCHIVE, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((out_dir / "model").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(out_dir).as_posix())
        for name in ("metrics.json", training_service.RELIABILITY_PNG):
            archive.write(out_dir / name, name)


def _heartbeat(factory: sessionmaker[Session], job: JobData, progress: dict[str, object],
               run_id: int | None = None) -> None:
    with unit_of_work(factory) as session:
        held = jobs_service.heartbeat(session, job_id=job.id, worker_id=job.worker_id,
                                      lease_seconds=job.lease_seconds, now=utcnow(), progress=dict(progress))
        if run_id is not None:
            training_service.record_progress(session, run_id=run_id, progress=dict(progress))
    if not held:
        raise LeaseLost(f"job {job.id} is no longer held by {job.worker_id}")


def handlers(settings: Settings) -> dict[str, Handler]:
    return {training_service.TRAIN_JOB: functools.partial(handle_train, settings=settings),
            training_service.SCORE_JOB: handle_score}
