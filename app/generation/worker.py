"""The "generate" job: load the model once, then generate and store candidates batch by batch.

Each batch is stored in its own transaction, so annotators can start before the run ends, a killed
worker loses at most the batch in flight, and a retry skips what is stored (the candidates' unique key).
"""

from __future__ import annotations

import functools
import logging

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db import unit_of_work, utcnow
from app.generation import service as generation_service
from app.generation.generator import (
    Backend,
    DecodingParams,
    GenerationFailed,
    Sample,
    load_backend,
    load_remote_backend,
    with_system,
)
from app.generation.model_store import ModelNotAvailable
from app.generation.models import BackendKind
from app.generation.schemas import ConfigData, PromptData, RunPlan
from app.jobs import service as jobs_service
from app.jobs.runner import Handler, Interrupted, JobData, LeaseLost, PermanentFailure

log = logging.getLogger(__name__)
BATCH_PROMPTS = 8
# The first batch is small so the first items reach annotators within seconds of the model loading.
FIRST_BATCH_PROMPTS = 1


def handle_generate(session_factory: sessionmaker[Session], job: JobData,
                    settings: Settings | None = None) -> None:
    """Generate the run's missing candidates. Settings default to the environment's (get_settings())."""
    settings = settings or get_settings()
    run_id = int(job.payload["run_id"])
    with unit_of_work(session_factory) as session:
        plan = generation_service.begin_run(session, run_id=run_id)
    if plan is None:
        log.info("generation run %d is gone or finished; nothing to do", run_id)
        return
    try:
        _generate(session_factory, job, plan, settings)
    except LeaseLost:
        raise  # another worker has the run now, or it was cancelled: leave the run to them
    except Interrupted:
        with unit_of_work(session_factory) as session:
            generation_service.requeue_run(session, run_id=run_id)
        raise
    except Exception as exc:
        final = job.last_attempt or isinstance(exc, PermanentFailure)
        with unit_of_work(session_factory) as session:
            generation_service.fail_run(session, run_id=run_id, error=f"{type(exc).__name__}: {exc}",
                                        final=final, now=utcnow())
        raise
    with unit_of_work(session_factory) as session:
        generation_service.finish_run(session, run_id=run_id, now=utcnow())


def _generate(factory: sessionmaker[Session], job: JobData, plan: RunPlan, settings: Settings) -> None:
    for config in plan.configs:
        try:  # slow (and a first use of the bundled model converts it): no transaction is open
            backend = (load_remote_backend(config.model, config.remote)
                       if config.backend == BackendKind.OPENAI
                       else load_backend(config.model or settings.generation_model, settings.models_dir))
        except ModelNotAvailable as exc:
            raise PermanentFailure(f"config {config.key}: {exc}") from exc
        with unit_of_work(factory) as session:
            generation_service.mark_started(session, run_id=plan.run_id, now=utcnow())
            held = jobs_service.heartbeat(session, job_id=job.id, worker_id=job.worker_id,
                                          lease_seconds=job.lease_seconds, now=utcnow())
        if not held:  # loading took longer than the lease and another worker took over, or it was cancelled
            raise LeaseLost(f"job {job.id} is no longer held by {job.worker_id}")
        _generate_config(factory, job, plan, config, backend)


def _generate_config(factory: sessionmaker[Session], job: JobData, plan: RunPlan, config: ConfigData,
                     backend: Backend) -> None:
    seen: set[int] = set()
    failed: set[int] = set()  # prompts the backend gave up on: skipped for the rest of this run
    limit = FIRST_BATCH_PROMPTS
    while not job.stop.is_set():
        with unit_of_work(factory) as session:
            listed = generation_service.next_prompts(session, plan=plan, config_key=config.key,
                                                     limit=limit + len(failed))
        batch = [p for p in listed if p.id not in failed][:limit]
        limit = BATCH_PROMPTS
        if not batch:
            return
        repeated = seen.intersection(p.id for p in batch)
        if repeated:  # stored, yet still listed as lacking candidates: stop rather than loop forever
            raise RuntimeError(f"prompts {sorted(repeated)} still lack candidates after generation")
        seen.update(p.id for p in batch)
        failed.update(_store(factory, job, plan, config, batch, backend))
    raise Interrupted("worker stopping")


def _store(factory: sessionmaker[Session], job: JobData, plan: RunPlan, config: ConfigData,
           batch: list[PromptData], backend: Backend) -> list[int]:
    """Generate and store one batch; returns the prompts that failed."""
    params = DecodingParams.of(config.params)
    system = str(config.params.get("system_prompt", ""))
    conversations = [with_system(p.messages, system) for p in batch]
    try:
        samples: list[list[Sample] | None] = list(backend.generate(conversations, plan.candidates_per_prompt,
                                                                   params))
        reasons: dict[int, str] = {}
    except GenerationFailed as exc:
        samples, reasons = exc.partial, exc.reasons
    results = [(p.id, s) for p, s in zip(batch, samples, strict=True) if s is not None]
    failures = [{"prompt_id": batch[i].id, "config": config.key, "reason": reason[:500]}
                for i, reason in sorted(reasons.items())]
    with unit_of_work(factory) as session:
        generation_service.store_batch(session, plan=plan, config_key=config.key, results=results,
                                       model_id=backend.model_id, revision=backend.revision,
                                       params={**params.as_dict(), "system_prompt": system},
                                       failures=failures)
        run = generation_service.get_run(session, project_id=plan.project_id, run_id=plan.run_id)
        held = jobs_service.heartbeat(session, job_id=job.id, worker_id=job.worker_id,
                                      lease_seconds=job.lease_seconds, now=utcnow(),
                                      progress={"done": run.done_prompts, "total": run.total_prompts})
    if not held:  # the batch is stored either way (idempotent); stop working on a job we lost
        raise LeaseLost(f"job {job.id} is no longer held by {job.worker_id}")
    return [p.id for p in batch if p.id not in {r[0] for r in results}]


def handlers(settings: Settings) -> dict[str, Handler]:
    """The job handlers of this domain, bound to `settings`."""
    return {generation_service.JOB_KIND: functools.partial(handle_generate, settings=settings)}


# settings from the environment (get_settings()); prefer handlers(settings) when they come from elsewhere
HANDLERS: dict[str, Handler] = {generation_service.JOB_KIND: handle_generate}
