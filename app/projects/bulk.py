"""Bulk writes for imports: ids drawn from the table's sequence, rows streamed with COPY.

A multi-row INSERT of 100k prompts spends most of its time building and parsing the statement;
COPY streams the same rows in a few seconds. The rows join the session's transaction, so the
import stays all or nothing; the ORM does not see them (callers use the returned ids and counts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlalchemy.orm import Session


def allocate_ids(session: Session, table: str, n: int) -> list[int]:
    """`n` fresh ids from `table`'s id sequence, ascending (so rows keep the file's order)."""
    if n <= 0:
        return []
    ids = session.scalars(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                               "FROM generate_series(1, :n)"), {"table": table, "n": n})
    return sorted(ids)


EMPTY_JSON = "{}"  # COPY's text format takes JSON text as it is: no dump per row for a constant


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value)


def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY `rows` (tuples in `columns` order; JSON values wrapped with jsonb()) into `table`."""
    driver = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    count = 0
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
