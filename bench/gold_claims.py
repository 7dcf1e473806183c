"""Benchmark: claims with gold and repeats interleaved, the gate, and the standings of a project with
100k items and 5 annotators who judged 20k items each (2k of them gold). Prints each figure beside its
target and exits non-zero on a miss.

    PYTHONPATH=. .venv/bin/python bench/gold_claims.py [postgresql://postgres@127.0.0.1:5432/postgres]

Builds its own database on that server (dropped at the end) with `alembic upgrade head`.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import migrate
from app.accounts.models import User
from app.annotation import service as annotation_service
from app.assignment import service as assignment_service
from app.db import make_engine, make_session_factory, utcnow
from app.gold import service as gold_service
from app.projects.models import Project

ITEMS, ANNOTATORS, JUDGED, GOLD_ITEMS = 100_000, 5, 20_000, 2_000
TARGETS_MS = {"claim_next_item (gold 10%, repeats 5%)": 25.0, "gate (clearance)": 5.0,
              "standings (5 annotators)": 50.0}

SEED = """
INSERT INTO users (id, username, display_name, password_hash, role, is_active)
  SELECT g, 'bench' || g, 'bench ' || g, '!', 'annotator', true FROM generate_series(1, :annotators) g;
INSERT INTO projects (id, name, description, mode, attributes, overlap_k, lease_minutes,
                      candidates_per_prompt, generation, gold_rate, repeat_rate)
  VALUES (1, 'bench', '', 'pairwise', '[]', :annotators, 30, 2, '{}', 0.1, 0.05);
INSERT INTO project_members (project_id, user_id) SELECT 1, g FROM generate_series(1, :annotators) g;
INSERT INTO prompts (id, project_id, messages, meta)
  SELECT g, 1, '[{"role": "user", "content": "prompt"}]', '{}' FROM generate_series(1, :items) g;
INSERT INTO candidates (id, prompt_id, text, source, config_key, sample_index, model, revision, params)
  SELECT 2 * g - 1 + s, g, 'answer', 'import', 'import', s, '', '', '{}'
  FROM generate_series(1, :items) g, generate_series(0, 1) s;
INSERT INTO items (id, project_id, prompt_id, kind, candidate_a_id, candidate_b_id, open_slots,
                   judgement_count, purpose)
  SELECT g, 1, g, 'pair', 2 * g - 1, 2 * g,
         CASE WHEN g <= :gold OR g > :judged THEN :annotators ELSE 0 END,
         CASE WHEN g <= :gold OR g > :judged THEN 0 ELSE :annotators END,
         CASE WHEN g <= :gold THEN 'gold' ELSE 'regular' END
  FROM generate_series(1, :items) g;
INSERT INTO gold_answers (item_id, project_id, choice, ranges, explanation)
  SELECT g, 1, 'a', '{}', '' FROM generate_series(1, :gold) g;
-- k = 5: every annotator judged the first :judged items (the gold ones among them), 80% right on gold
INSERT INTO leases (item_id, annotator_id, project_id, swapped, skipped, is_repeat, takes_slot, expires_at,
                    completed_at)
  SELECT i, a, 1, (i + a) % 2 = 0, false, false, i > :gold, now(), now()
  FROM generate_series(1, :judged) i, generate_series(1, :annotators) a;
INSERT INTO gold_scores (project_id, item_id, annotator_id, choice, ratings, correct)
  SELECT 1, i, a, 'a', '{}', i % 5 <> 0 FROM generate_series(1, :gold) i, generate_series(1, :annotators) a;
SELECT setval('leases_id_seq', (SELECT max(id) FROM leases));
SELECT setval('gold_scores_id_seq', (SELECT max(id) FROM gold_scores));
ANALYZE;
"""


def _median_ms(run: Callable[[], object], repeats: int = 30) -> tuple[float, float]:
    """(median, fastest) wall time in ms: the fastest run shows the cost on a machine with idle cores."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def _measure(session: Session) -> dict[str, tuple[float, float]]:
    project = session.get(Project, 1)
    annotators = [session.get(User, n) for n in range(1, ANNOTATORS + 1)]
    assert project is not None and all(annotators)

    def claim() -> None:
        # A claim inside a savepoint that is rolled back: every run sees the same state.
        nested = session.begin_nested()
        assignment_service.claim_next_item(session, project=project, annotator=annotators[0],  # type: ignore[arg-type]
                                           now=utcnow())
        nested.rollback()

    return {
        "claim_next_item (gold 10%, repeats 5%)": _median_ms(claim),
        "gate (clearance)": _median_ms(lambda: annotation_service.clearance(
            session, project=project, annotator=annotators[0], now=utcnow())),  # type: ignore[arg-type]
        "standings (5 annotators)": _median_ms(lambda: gold_service.standings(session, project_id=1), 10),
    }


def main(server: str) -> int:
    name = f"bench_gold_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(server).set(database=name).render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            for statement in filter(str.strip, SEED.split(";\n")):
                conn.execute(text(statement), {"annotators": ANNOTATORS, "items": ITEMS, "gold": GOLD_ITEMS,
                                               "judged": JUDGED})
        with make_session_factory(engine)() as session, session.begin():
            figures = _measure(session)
            session.rollback()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    missed = 0
    for label, (median, fastest) in figures.items():
        target = TARGETS_MS[label]
        missed += median > target
        print(f"{label:42s} median {median:7.2f} ms (fastest {fastest:6.2f})   target < {target:.0f} ms   "
              f"{'ok' if median <= target else 'MISS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
