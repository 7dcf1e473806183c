"""The `prefstudio` command: serve, worker, db, users, import, export, train-rm, score, demo."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings, get_settings

app = typer.Typer(help="prefstudio: human preference data for RLHF, from prompt to reward model.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured server's URL, or an embedded Postgres in the data dir for the block's duration."""
    if settings.database_url:
        yield settings.database_url
        return
    from app.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError

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
def serve(host: Annotated[str | None, typer.Option()] = None,
          port: Annotated[int | None, typer.Option()] = None) -> None:
    """Run the web server (starts the embedded Postgres when no database URL is set)."""
    import uvicorn

    from app.main import DatabaseNotMigrated, create_app

    settings = get_settings()
    with database(settings) as url:
        try:
            web = create_app(settings.model_copy(update={"database_url": url}))
        except DatabaseNotMigrated as exc:
            fail(str(exc))
        uvicorn.run(web, host=host or settings.host, port=port or settings.port, log_level="info")


@app.command()
def worker(once: Annotated[bool, typer.Option(help="exit when the queue is empty")] = False) -> None:
    """Run a background worker: claims jobs (generation, training) from Postgres and runs them."""
    import threading

    from app.generation.worker import HANDLERS
    from app.jobs.runner import run_worker

    settings = get_settings()
    with migrated_factory(settings) as factory:
        stop = threading.Event()
        worker_id = f"{os.uname().nodename}:{os.getpid()}"
        typer.echo(f"worker {worker_id} waiting for jobs")
        run_worker(factory, HANDLERS, worker_id=worker_id, poll_seconds=settings.worker_poll_seconds,
                   lease_seconds=settings.job_lease_seconds, stop=stop, exit_when_idle=once)


@users_app.command("create")
def users_create(username: str, role: Annotated[Role, typer.Option()] = Role.ANNOTATOR,
                 password: Annotated[str | None, typer.Option(help="prompted for when omitted")] = None,
                 display_name: str = "") -> None:
    """Create a user (the first admin: `prefstudio users create alice --role admin`)."""
    from app.accounts import service as accounts_service
    from app.db import unit_of_work
    from app.errors import DomainError

    secret = password or os.environ.get("PREFSTUDIO_NEW_PASSWORD") or getpass.getpass("password: ")
    with migrated_factory(get_settings()) as factory:
        try:
            with unit_of_work(factory) as session:
                accounts_service.create_user(session, username=username, password=secret, role=role,
                                             display_name=display_name)
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
        assert user is not None
        _, raw = accounts_service.create_api_token(session, user=user, name=name)
    typer.echo(raw)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
