"""A throwaway, migrated benchmark database filled with generate_series: k annotators on every item.

Shared by the bench scripts (not a benchmark itself, nor a test fixture). Every row is built by Postgres
itself (INSERT ... SELECT generate_series), so 1M judgements take a minute, not an hour.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from app import migrate
from app.db import make_engine, normalize_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROJECT_ID = 1
ADMIN_ID = 1000


def server_url() -> str:
    """The server to create the throwaway database on: argv[1], else TEST_DATABASE_URL, else local."""
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TEST_DATABASE_URL", DEFAULT_URL)
    return normalize_url(url)


@contextmanager
def scratch_database(server: str) -> Iterator[Engine]:
    """A new migrated database on `server`, dropped afterwards."""
    name = f"prefstudio_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(server).set(database=name).render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


SEED_SQL = [
    """INSERT INTO users (id, username, display_name, password_hash, role, is_active)
       SELECT g, 'annotator' || g, 'Annotator ' || g, '!', 'annotator', true FROM generate_series(1, :k) g""",
    """INSERT INTO users (id, username, display_name, password_hash, role, is_active)
       VALUES (:admin, 'bench-admin', 'Bench admin', '!', 'admin', true)""",
    """INSERT INTO projects (id, name, description, mode, attributes, overlap_k, lease_minutes,
                             candidates_per_prompt, generation)
       VALUES (:project, 'bench', '', 'pairwise', '[]', :k, 30, 2, '{}')""",
    """INSERT INTO prompts (id, project_id, messages, meta)
       SELECT g, :project, jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'Prompt ' || g)),
              '{}' FROM generate_series(1, :n) g""",
    """INSERT INTO candidates (id, prompt_id, text, source, config_key, sample_index, model, revision, params)
       SELECT 2 * g - 1 + s, g, 'Answer ' || s, 'import', 'import', s, '', '', '{}'
       FROM generate_series(1, :n) g, generate_series(0, 1) s""",
    """INSERT INTO items (id, project_id, prompt_id, kind, candidate_a_id, candidate_b_id, open_slots,
                          judgement_count, purpose)
       SELECT g, :project, g, 'pair', 2 * g - 1, 2 * g, 0, :k, 'regular' FROM generate_series(1, :n) g""",
    # Every item has a hidden preference (its id's hash): annotators follow it 70% of the time, so the
    # agreement is realistic (neither 0 nor 1). Judgements spread over 60 days.
    """CREATE TEMP TABLE bench_votes AS
       SELECT (g - 1) * :k + a AS id, g AS item_id, a AS annotator_id, random() < 0.5 AS swapped,
              now() - interval '60 days' * random() AS at, random() AS r,
              hashtext(g::text) % 2 = 0 AS likes_a,
              (1 + floor(random() * 3))::smallint AS strength, (1 + random() * 40) AS seconds
       FROM generate_series(1, :n) g, generate_series(1, :k) a""",
    """INSERT INTO leases (id, item_id, annotator_id, project_id, swapped, skipped, is_repeat, created_at,
                           expires_at, completed_at)
       SELECT id, item_id, annotator_id, :project, swapped, false, false, at, at, at FROM bench_votes""",
    """INSERT INTO judgements (id, project_id, item_id, lease_id, annotator_id, choice, strength, swapped,
                               rationale, flags, seconds, idempotency_key, is_repeat, created_at)
       SELECT id, :project, item_id, id, annotator_id, c.choice,
              CASE WHEN c.choice IN ('a', 'b') THEN strength END, swapped, '',
              CASE WHEN r > 0.999 THEN '["hallucination"]'::jsonb ELSE '[]'::jsonb END, seconds,
              md5(id::text), false, at
       FROM bench_votes,
            LATERAL (SELECT CASE WHEN r < 0.7 THEN CASE WHEN likes_a THEN 'a' ELSE 'b' END
                                 WHEN r < 0.85 THEN CASE WHEN likes_a THEN 'b' ELSE 'a' END
                                 WHEN r < 0.97 THEN 'tie' ELSE 'both_bad' END AS choice) c""",
    "DROP TABLE bench_votes",
    """SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT coalesce(max(id), 1) FROM judgements))
       FROM unnest(ARRAY['leases', 'judgements']) t""",
    "ANALYZE",
]


def seed_pairwise(engine: Engine, *, items: int, k: int) -> float:
    """`items` pair items each judged by the same `k` annotators (users 1..k); returns seconds taken.

    As a superuser the foreign-key triggers are skipped while seeding (session_replication_role): the rows
    are consistent by construction, and checking them would take most of the time.
    """
    started = time.perf_counter()
    with engine.begin() as conn:
        if conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in SEED_SQL[:-1]:
            conn.execute(text(statement), {"k": k, "n": items, "project": PROJECT_ID, "admin": ADMIN_ID})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(SEED_SQL[-1]))
    return time.perf_counter() - started


NEW_VOTES_SQL = """
INSERT INTO users (id, username, display_name, password_hash, role, is_active)
VALUES (:user, 'late' || :user, 'Late annotator', '!', 'annotator', true) ON CONFLICT (id) DO NOTHING;
INSERT INTO leases (item_id, annotator_id, project_id, swapped, expires_at, completed_at)
SELECT item_id, :user, :project, false, now(), now() FROM judgements WHERE project_id = :project
GROUP BY item_id ORDER BY max(created_at) DESC LIMIT :n;
INSERT INTO judgements (project_id, item_id, lease_id, annotator_id, choice, strength, swapped, rationale,
                        flags, seconds, idempotency_key, is_repeat)
SELECT :project, l.item_id, l.id, :user, 'a', 1, false, '', '[]', 12, md5(random()::text || l.id), false
FROM leases l WHERE l.annotator_id = :user"""


def add_votes(engine: Engine, *, user: int, n: int) -> None:
    """`n` new committed judgements by a new annotator `user`, on the items judged most recently: work goes
    on where it was (an item's votes arrive close together), as in a live project."""
    with engine.begin() as conn:
        for statement in NEW_VOTES_SQL.split(";"):
            conn.execute(text(statement), {"user": user, "n": n, "project": PROJECT_ID})
