"""Declarative base, engine and session factories, the request-scoped session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012 (SQLAlchemy reads it)


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


NEVER_PREPARE_BY_COUNT = 2**62
# A pooled connection idle for longer than this is pinged before it is handed out (see make_engine).
PING_AFTER_IDLE_S = 5.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine whose pool hands out live connections, pinging only those idle for a while.

    SQLAlchemy's pool_pre_ping pings on every checkout: a round trip per request, about a tenth of the
    annotation hot path's CPU. Here a connection is pinged when it has sat idle for PING_AFTER_IDLE_S
    (a Postgres restart, or a connection dropped by a firewall, happens while it sits); a dead one is
    replaced before use. A connection that dies while busy fails its statement as before, and the pool
    then throws away every connection older than the failure.
    """
    # psycopg would prepare every statement on its fifth run; Postgres then plans a prepared statement
    # once, generically, for any parameters, and for ours that guessed badly: with `purpose = $2` it cannot
    # tell that 'gold' or 'calibration' is rare, so "has this project gold (calibration) items?" became a
    # sequential scan of every item (2.6 -> 19 ms for the gate on 100k items). Statements are planned
    # for their values instead; the annotation API's lean statements, whose constants are literals, are
    # prepared explicitly (app/annotation/lean.py). A threshold never reached, not None: None would refuse
    # those explicit requests too.
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 20,
                               "connect_args": {"prepare_threshold": NEVER_PREPARE_BY_COUNT}}
    options.update(kwargs)
    engine = create_engine(normalize_url(url), **options)
    if options.get("pool_pre_ping") is None:
        event.listen(engine, "checkin", _note_checkin)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
    if dbapi_connection.closed:  # psycopg saw it die (the lean path uses it without SQLAlchemy)
        raise DisconnectionError("a pooled connection was closed")
    checked_in = record.info.get("checked_in")  # None: a new connection, just made
    if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_S:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # any failure: hand out a fresh connection instead
        raise DisconnectionError(f"a pooled connection was dead: {exc}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends cleanly, rolled back when it raises."""
    with factory() as session, session.begin():
        yield session
