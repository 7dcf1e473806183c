"""Alembic environment. The URL comes from the caller (config attribute or -x url=…); the
metadata only for autogenerate. Migrations themselves are static and never import app.*."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("no database URL: use `prefstudio db upgrade` (it knows the URL)")
    return str(url)


def _target_metadata() -> object:
    if not config.attributes.get("autogenerate"):
        return None
    from app.models import Base

    return Base.metadata


def _add_table_ddl(context: object, revision: object, directives: list[Any]) -> None:
    """Autogenerate cannot see triggers and functions: append the (upgrade SQL, downgrade SQL) pairs that
    models register in Base.metadata.info["ddl"][table name], so a regenerated migration keeps them."""
    from alembic.operations import ops

    from app.models import Base

    script = directives[0]
    ddl = Base.metadata.info.get("ddl", {})
    pairs = [pair for table in Base.metadata.sorted_tables for pair in ddl.get(table.name, ())]
    script.upgrade_ops.ops.extend(ops.ExecuteSQLOp(up) for up, _ in pairs)
    script.downgrade_ops.ops[:0] = [ops.ExecuteSQLOp(down) for _, down in reversed(pairs)]


def _options() -> dict[str, Any]:
    options: dict[str, Any] = {"target_metadata": _target_metadata(), "compare_type": True}
    if config.attributes.get("autogenerate"):
        options["process_revision_directives"] = _add_table_ddl
    return options


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_options())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **_options())
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
