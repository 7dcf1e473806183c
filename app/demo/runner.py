"""`prefstudio demo`: database, schema, demo data, then the web server with a worker beside it.

The worker is a separate process (the web process never loads torch); Ctrl-C stops the server, then the
worker, then the embedded Postgres, in that order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import typer

from app import migrate
from app.config import Settings
from app.db import make_engine, make_session_factory, unit_of_work
from app.demo.seed import DEMO_LOGINS, seed


def _start_worker(settings: Settings, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PREFSTUDIO_DATABASE_URL": url, "PREFSTUDIO_DATA_DIR": str(settings.data_dir)}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _print_logins(settings: Settings) -> None:
    typer.secho(f"\nprefstudio demo: http://{settings.host}:{settings.port}/", bold=True)
    for login in DEMO_LOGINS:
        typer.echo(f"  {login.role.value:<10}  user {login.username:<6}  password {login.password}")
    typer.echo("Candidates are being generated now; the first items appear within a minute. Ctrl-C stops.\n")


def run_demo(
    settings: Settings,
    *,
    serve: bool,
    database: Callable[[Settings], AbstractContextManager[str]],
    create_app: Callable[..., Any],
) -> None:
    """`create_app` comes from the caller: nothing in app/ but the CLI imports app.main."""
    import uvicorn

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with database(settings) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with unit_of_work(factory) as session:
            project = seed(session)
            typer.echo(f"demo project #{project.id}: {project.name}")
        if not serve:
            engine.dispose()
            return
        worker = _start_worker(settings, url)
        try:
            _print_logins(settings)
            web = create_app(settings.model_copy(update={"database_url": url}), session_factory=factory)
            uvicorn.run(web, host=settings.host, port=settings.port, log_level="info")
        finally:
            _stop(worker)
            engine.dispose()
