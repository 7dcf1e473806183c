"""Real Postgres for every test: TEST_DATABASE_URL (a server; this run creates and drops its own
database) or else the embedded server. Schema only from `alembic upgrade head`. Each test runs in an
outer transaction that is rolled back; the app's sessions join it as savepoints."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.config import Settings
from app.db import make_engine, normalize_url
from app.main import create_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of a database the run may create databases on (maintenance db `postgres`)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield normalize_url(configured)
        return
    from app.embedded_pg import EmbeddedPostgres

    # Not under pytest's tmp dir: a later pytest run resets it to 0700, which cuts a server running as
    # the unprivileged user (root runs Postgres that way) off from its own files.
    data_dir = Path(tempfile.mkdtemp(prefix="prefstudio-pgtest-"))
    try:
        with EmbeddedPostgres(data_dir, durable=False) as pg:
            yield pg.url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _create_database(server: str, name: str) -> str:
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _drop_database(server: str, name: str) -> None:
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    name = f"prefstudio_test_{uuid.uuid4().hex[:10]}"
    url = _create_database(server_url, name)
    engine = make_engine(url, pool_size=2)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    _drop_database(server_url, name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=20, max_overflow=40)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False, autoflush=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside the test's outer transaction; flush to make rows visible to the app."""
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
def app_client(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(settings, session_factory=session_factory)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def committed(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Real, committing sessions for tests across connections or processes; tables are emptied after."""
    yield sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
    with engine.begin() as conn:
        tables = conn.scalars(
            text(
                "SELECT tablename FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ).all()
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, for a module's browser tests (which skip when it is absent)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, LAUNCH_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()
