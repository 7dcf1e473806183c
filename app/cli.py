"""The `prefstudio` command: serve, worker, db, users, import, export, train-rm, score, demo."""

from __future__ import annotations

import getpass
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings, get_settings

app = typer.Typer(
    help="prefstudio: human preference data for RLHF, from prompt to reward model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured server's URL, or an embedded Postgres in the data dir for the block's duration."""
    if settings.database_url:
        yield settings.database_url
        return
    from app.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError

    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default action the process would die
    # before this block's exit stops Postgres. As an exception it unwinds through the `with` instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with EmbeddedPostgres(settings.data_dir) as pg:
            yield pg.url
    except EmbeddedPostgresError as exc:
        fail(str(exc))


@contextmanager
def migrated_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    from app import migrate
    from app.db import make_engine, make_session_factory

    with database(settings) as url:
        engine = make_engine(url)
        if not migrate.is_up_to_date(engine):
            fail("the database is not migrated to the newest schema: run `prefstudio db upgrade` first")
        try:
            yield make_session_factory(engine)
        finally:
            engine.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to REVISION (default: the newest)."""
    from app import migrate
    from app.db import make_engine

    with database(get_settings()) as url:
        engine = make_engine(url)
        migrate.upgrade(engine, revision)
        typer.echo(f"database at revision {migrate.current_revision(engine)}")
        engine.dispose()


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION ("base" removes every table)."""
    from app import migrate
    from app.db import make_engine

    with database(get_settings()) as url:
        engine = make_engine(url)
        migrate.downgrade(engine, revision)
        typer.echo(f"database at revision {migrate.current_revision(engine)}")
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one."""
    from app import migrate
    from app.db import make_engine

    with database(get_settings()) as url:
        engine = make_engine(url)
        typer.echo(f"current: {migrate.current_revision(engine)}  newest: {migrate.head_revision()}")
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="web processes, each with its own connection pool (default: PREFSTUDIO_WORKERS or 1)",
    )] = None,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log", help="log every request (a proxy in front usually does)",
    )] = True,
) -> None:
    """Run the web server (starts the embedded Postgres when no database URL is set)."""
    import uvicorn

    settings = get_settings()
    with database(settings) as url:
        target, options = uvicorn_config(settings.model_copy(update={"database_url": url}), host=host,
                                         port=port, workers=workers, access_log=access_log)
        uvicorn.run(target, **options)


def uvicorn_config(settings: Settings, *, host: str | None = None, port: int | None = None,
                   workers: int | None = None, access_log: bool = True) -> tuple[Any, dict[str, Any]]:
    """What `serve` hands to uvicorn.run: the app itself for one process; for several, the factory's
    import string, since each worker process builds its own app (and pool) from PREFSTUDIO_* variables.

    Fails (exit 1) on an unmigrated database before any worker starts.
    """
    from app.main import DatabaseNotMigrated, create_app

    count = workers or settings.workers
    options: dict[str, Any] = {"host": host or settings.host, "port": port or settings.port,
                               "log_level": "info", "access_log": access_log}
    try:
        web = create_app(settings)
    except DatabaseNotMigrated as exc:
        fail(str(exc))
    if count == 1:
        return web, options
    web.state.session_factory.kw["bind"].dispose()  # only checked the schema; the workers build their own
    os.environ["PREFSTUDIO_DATABASE_URL"] = settings.database_url or ""
    os.environ["PREFSTUDIO_DATA_DIR"] = str(settings.data_dir)
    return "app.main:create_app", {**options, "factory": True, "workers": count}


@app.command()
def worker(once: Annotated[bool, typer.Option(help="exit when the queue is empty")] = False) -> None:
    """Run a background worker: claims jobs (generation, training) from Postgres and runs them."""
    import logging
    import threading

    from app.generation.worker import handlers as generation_handlers
    from app.jobs.runner import run_worker
    from app.training.worker import handlers as training_handlers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    with migrated_factory(settings) as factory:
        worker_id = f"{os.uname().nodename}:{os.getpid()}"
        typer.echo(f"worker {worker_id} waiting for jobs")
        handled = run_worker(
            factory,
            generation_handlers(settings) | training_handlers(settings),
            worker_id=worker_id,
            poll_seconds=settings.worker_poll_seconds,
            lease_seconds=settings.job_lease_seconds,
            stop=threading.Event(),
            exit_when_idle=once,
        )
        typer.echo(f"worker {worker_id} stopped after {handled} job(s)")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option()] = Role.ANNOTATOR,
    password: Annotated[str | None, typer.Option(help="prompted for when omitted")] = None,
    display_name: str = "",
) -> None:
    """Create a user (the first admin: `prefstudio users create alice --role admin`)."""
    from app.accounts import service as accounts_service
    from app.db import unit_of_work
    from app.errors import DomainError

    secret = password or os.environ.get("PREFSTUDIO_NEW_PASSWORD") or getpass.getpass("password: ")
    with migrated_factory(get_settings()) as factory:
        try:
            with unit_of_work(factory) as session:
                accounts_service.create_user(
                    session, username=username, password=secret, role=role, display_name=display_name
                )
        except DomainError as exc:
            fail(exc.message)
    typer.echo(f"created {role.value} {username}")


@users_app.command("token")
def users_token(username: str, name: str = "cli") -> None:
    """Create an API token for USERNAME and print it (shown once)."""
    from app.accounts import service as accounts_service
    from app.db import unit_of_work

    with migrated_factory(get_settings()) as factory, unit_of_work(factory) as session:
        user = accounts_service.get_user_by_name(session, username)
        if user is None:
            fail(f"no user {username!r}")
        _, raw = accounts_service.create_api_token(session, user=user, name=name)
    typer.echo(raw)


@app.command("import")
def import_prompts(
    file: Path,
    project: Annotated[int, typer.Option(help="project id")],
    as_user: Annotated[str, typer.Option("--as", help="admin recorded in the audit log")] = "",
) -> None:
    """Import prompts from a JSONL or CSV FILE into a project (all rows or none)."""
    from app.accounts import service as accounts_service
    from app.db import unit_of_work
    from app.errors import DomainError
    from app.projects import service as projects_service
    from app.projects.models import Project

    if not file.is_file():
        fail(f"no such file: {file}")
    with migrated_factory(get_settings()) as factory:
        try:
            with unit_of_work(factory) as session:
                target = session.get(Project, project)
                if target is None:
                    fail(f"no project with id {project}")
                admins = [
                    u for u in accounts_service.list_users(session) if u.role == Role.ADMIN and u.is_active
                ]
                actor = (
                    accounts_service.get_user_by_name(session, as_user)
                    if as_user
                    else next(iter(admins), None)
                )
                if actor is None:
                    fail(f"no user {as_user!r}" if as_user else "no active admin: create one first")
                result = projects_service.import_prompts(
                    session, project=target, filename=file.name, content=file.read_bytes(), actor=actor
                )
        except DomainError as exc:
            for row in exc.details or []:
                typer.echo(f"  row {row.get('row')}: {row.get('field')}: {row.get('message')}", err=True)
            fail(exc.message)
    typer.echo(f"imported {result.imported} prompts, {result.candidates} candidates, {result.items} items")


@app.command("export")
def export(
    project: Annotated[int, typer.Option(help="project id")],
    format: Annotated[str, typer.Option("--format", "-f", help="trl, trl-implicit, kto, hh, ratings, raw")
                      ] = "trl",
    out: Annotated[Path | None, typer.Option(help="JSONL file to write, its card beside it; else stdout")
                   ] = None,
    style: Annotated[str, typer.Option(help="conversational or standard")] = "conversational",
    margin: Annotated[bool, typer.Option(help="write the margin key")] = True,
    include_edits: Annotated[bool, typer.Option(help="add direct edits as edit > original pairs")] = True,
    aggregation: Annotated[str, typer.Option(help="majority, dawid-skene or bradley-terry")] = "majority",
    tie_policy: Annotated[str, typer.Option(help="drop, ignore or half")] = "drop",
    min_agreement: Annotated[float | None, typer.Option(help="minimum item agreement, 0-1")] = None,
    min_gold_accuracy: Annotated[float | None, typer.Option(help="leave out annotators below, 0-1")] = None,
    exclude_paused: Annotated[bool, typer.Option(help="leave out paused annotators")] = False,
    include_gold: Annotated[bool, typer.Option(help="include gold items")] = False,
    include_calibration: Annotated[bool, typer.Option(help="include calibration items")] = False,
    guideline_version: Annotated[int | None, typer.Option(help="only judgements under this version")] = None,
    since: Annotated[str | None, typer.Option(help="first UTC day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="last UTC day, YYYY-MM-DD")] = None,
    exclude_flag: Annotated[list[str] | None, typer.Option(help="leave out items flagged so (repeatable)")
                            ] = None,
    card: Annotated[Path | None, typer.Option(help="card path stem when writing to stdout")] = None,
) -> None:
    """Stream a project's preferences as JSONL with its dataset card (formats: see docs/formats.md)."""
    from pydantic import ValidationError

    from app.db import unit_of_work, utcnow
    from app.errors import DomainError
    from app.export import service as export_service
    from app.export.schemas import ExportOptions

    raw = {"format": format, "style": style, "margin": margin, "include_edits": include_edits,
           "aggregation": aggregation,
           "tie_policy": tie_policy, "min_agreement": min_agreement, "min_gold_accuracy": min_gold_accuracy,
           "exclude_paused": exclude_paused, "include_gold": include_gold,
           "include_calibration": include_calibration, "guideline_version": guideline_version,
           "since": since, "until": until, "exclude_flags": exclude_flag or []}
    try:
        options = ExportOptions.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    settings = get_settings()
    with migrated_factory(settings) as factory:
        try:
            with unit_of_work(factory) as session:
                plan = export_service.plan_export(session, project_id=project, options=options)
                export_service.record_export(session, plan=plan, actor=None, channel="cli")
            run = export_service.start(plan, factory=factory, secret=settings.secret_key, now=utcnow())
            stem = card if out is None else out.with_suffix("")
            if out is None:
                export_service.write_export(run, sys.stdout, card_stem=stem)
            else:
                with out.open("w", encoding="utf-8") as handle:
                    export_service.write_export(run, handle, card_stem=stem)
        except DomainError as exc:
            fail(exc.message)
    where = f"; card: {stem}.card.md and {stem}.card.json" if stem else "; no card (use --out or --card)"
    typer.echo(f"exported {run.tally.lines} lines{where}", err=True)


@app.command("train-rm")
def train_rm(
    export_file: Annotated[Path, typer.Argument(help="a TRL preference export (JSONL)")],
    out: Annotated[Path, typer.Option(help="output directory")],
    base_model: Annotated[str, typer.Option(help="HF id or path; default: bundled all-MiniLM-L6-v2")] = "",
    epochs: int = 1,
    batch_size: Annotated[int, typer.Option(help="pairs per step (per process)")] = 16,
    learning_rate: Annotated[float, typer.Option("--learning-rate", "--lr")] = 5e-5,
    max_length: Annotated[int, typer.Option(help="tokens per (prompt, response)")] = 256,
    margin: Annotated[bool, typer.Option(help="use the export's margin in the loss")] = True,
    center_rewards: Annotated[float, typer.Option(help="coefficient of mean((r_c + r_r)^2)")] = 0.0,
    eval_fraction: Annotated[float, typer.Option(help="share of prompts held out")] = 0.2,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Train a reward model (Bradley-Terry) on a TRL export; writes model/, metrics.json and
    reliability.png to OUT. Several GPUs: `accelerate launch -m app.cli train-rm ...`."""
    import json

    from app.training.data import ExportFormatError
    from app.training.model_store import BundledModelMissing
    from app.training.trainer import TrainConfig, train_reward_model

    if not export_file.is_file():
        fail(f"no such file: {export_file}")
    config = TrainConfig(
        base_model=base_model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        max_length=max_length, use_margin=margin, center_rewards_coefficient=center_rewards,
        eval_fraction=eval_fraction, seed=seed, device=device,
    )
    try:
        metrics = train_reward_model(export_file, out, config, progress=progress)
    except (ExportFormatError, BundledModelMissing, ValueError) as exc:
        fail(str(exc))
    if not metrics:
        return  # not the main process of `accelerate launch`: the main one reports
    keys = ("eval_accuracy", "eval_ece", "eval_brier", "eval_nll", "n_train", "n_eval", "pairs_per_second")
    typer.echo(json.dumps({k: metrics.get(k) for k in keys}, indent=2))
    typer.echo(f"model, metrics.json and reliability.png written to {out}")


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="a reward model directory (a train-rm run's model/)")],
    project: Annotated[int, typer.Option(help="project id")],
    uncertain_first: Annotated[bool | None, typer.Option(
        help="also turn the project's 'uncertain pairs first' queue order on (or off)")] = None,
) -> None:
    """Write reward scores to the project's candidates (and |Δr| to its pairs)."""
    from app.db import unit_of_work
    from app.projects.models import Project
    from app.training import service as training_service
    from app.training.worker import score_project

    with migrated_factory(get_settings()) as factory:
        with unit_of_work(factory) as session:
            if session.get(Project, project) is None:
                fail(f"no project with id {project}")
        try:
            done = score_project(factory, project_id=project, model_dir=model, label=str(model))
        except (ValueError, OSError) as exc:
            fail(str(exc))
        if uncertain_first is not None:
            with unit_of_work(factory) as session:
                target = session.get(Project, project)
                assert target is not None
                training_service.set_uncertain_first(session, project=target, enabled=uncertain_first,
                                                     actor=None)
    typer.echo(f"scored {done} candidates of project {project}")


@app.command()
def demo(
    serve_web: Annotated[bool, typer.Option("--serve/--no-serve", help="start server and worker")] = True,
) -> None:
    """Set up the demo (embedded Postgres, schema, users, project, generation) and run server + worker."""
    from app.demo.runner import run_demo
    from app.main import create_app

    run_demo(get_settings(), serve=serve_web, database=database, create_app=create_app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
