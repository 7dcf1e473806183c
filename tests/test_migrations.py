"""Migrations build the whole schema, go down and up again, and match the models exactly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url

import app.models  # noqa: F401  (registers every table)
from app import migrate
from app.db import Base, make_engine


@pytest.fixture
def scratch_engine(server_url: str) -> Iterator[Engine]:
    """An empty database of its own, dropped afterwards."""
    name = f"prefstudio_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(server_url).set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_builds_every_table_and_downgrade_removes_them(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine)
    tables = set(inspect(scratch_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert migrate.is_up_to_date(scratch_engine)

    migrate.downgrade(scratch_engine, "base")
    assert set(inspect(scratch_engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(scratch_engine)
    assert migrate.is_up_to_date(scratch_engine)


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models differ from migrations; write a migration: {diff}"


def test_app_refuses_to_start_on_an_unmigrated_database(scratch_engine: Engine) -> None:
    from app.config import Settings
    from app.main import DatabaseNotMigrated, create_app

    url = scratch_engine.url.render_as_string(hide_password=False)
    with pytest.raises(DatabaseNotMigrated, match="prefstudio db upgrade"):
        create_app(Settings(database_url=url))
