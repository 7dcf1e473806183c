"""Scale: next-item and submit latency at 10k items and at 1M items with 5M judgements.

Each scale gets its own database seeded by Postgres itself (bench/_seeding.py: k = 5 annotators have
judged every item), then every 10th item gets one more open slot (k = 6) for fresh annotators. A real
uvicorn server (bench/serving.py's) answers; one annotator at a time loops next -> judgement over HTTP,
so the figures are latencies, not contention. Target: the median of each at 1M items within 1.5x of its
value at 10k items. The queries of both requests are captured and EXPLAINed on the large database: none
may scan items, leases, judgements, prompts or candidates sequentially (the plans are written to
--plans for docs/performance.md).

    python bench/scale.py [SERVER_URL] [--small 10000] [--large 1000000] [--cycles 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _seeding import PROJECT_ID, scratch_database, seed_pairwise, server_url
from _support import Report, percentile, seed_annotators
from serving import server
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.accounts.service import token_digest
from app.annotation import lean
from app.annotation import service as annotation_service
from app.annotation.schemas import JudgementIn
from app.db import utcnow
from app.projects.models import Project

K = 5
RATIO_TARGET = 1.5
BIG_TABLES = ("items", "leases", "judgements", "prompts", "candidates")


def open_slots(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE projects SET overlap_k = :k WHERE id = :p"), {"k": K + 1, "p": PROJECT_ID})
        conn.execute(text("UPDATE items SET open_slots = 1 WHERE project_id = :p AND id % 10 = 0"),
                     {"p": PROJECT_ID})
        # the seeding set user ids itself; new users take ids after them
        conn.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), "
                          "(SELECT max(id) FROM users))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE items"))


def latencies(port: int, tokens: list[str], cycles: int) -> tuple[list[float], list[float]]:
    """`cycles` next -> judgement rounds, one request at a time, spread over the annotators."""
    next_ms: list[float] = []
    submit_ms: list[float] = []
    base = f"http://127.0.0.1:{port}/api/v1/projects/{PROJECT_ID}"
    clients = [httpx.Client(headers={"Authorization": f"Bearer {t}"}, timeout=30) for t in tokens]
    try:
        for n in range(cycles + 20):  # the first 20 warm the caches and are not counted
            client = clients[n % len(clients)]
            started = time.perf_counter()
            item = client.get(f"{base}/next")
            middle = time.perf_counter()
            if item.status_code != 200:
                raise RuntimeError(f"next answered {item.status_code}: {item.text[:300]}")
            body = item.json()
            answer = {"choice": "a", "strength": 2, "idempotency_key": body["idempotency_key"]}
            judged = client.post(f"{base}/leases/{body['lease_id']}/judgement", json=answer)
            ended = time.perf_counter()
            if judged.status_code != 201:
                raise RuntimeError(f"judgement answered {judged.status_code}: {judged.text[:300]}")
            if n >= 20:
                next_ms.append((middle - started) * 1000)
                submit_ms.append((ended - middle) * 1000)
    finally:
        for client in clients:
            client.close()
    return next_ms, submit_ms


def captured_plans(engine: Engine, annotator_id: int, lean_token: str) -> list[tuple[str, str]]:
    """Run one claim and one submit through the services (the general path), then one next and one
    judgement through the API's lean path (app/annotation/lean.py, with `lean_token`), capture every
    statement, EXPLAIN each (in a transaction rolled back at the end, so nothing is kept)."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
            statements.append((statement, parameters))

    plain_cursor = lean.Plain.cursor

    def capture_lean(plain: lean.Plain, db: Any, params: Any) -> Any:
        statements.append((plain.sql, dict(params)))
        return plain_cursor(plain, db, params)

    plans = []
    with engine.connect() as conn, conn.begin() as transaction:
        session = Session(bind=conn)
        project = session.get(Project, PROJECT_ID)
        annotator = session.scalar(select(User).where(User.id == annotator_id))
        assert project is not None and annotator is not None
        event.listen(engine, "before_cursor_execute", capture)
        try:
            annotation_service.readiness(session, project=project, annotator=annotator, now=utcnow())
            item = annotation_service.claim_item(session, project=project, annotator=annotator, now=utcnow())
            assert item is not None
            annotation_service.record(session, lease_id=item.lease_id, annotator=annotator,
                                      form=JudgementIn(choice="a", strength=2), now=utcnow(),
                                      project_id=project.id)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        lean.Plain.cursor = capture_lean  # type: ignore[method-assign]
        try:
            digest = token_digest(lean_token)
            shown = lean.next_item(session, token_hash=digest, project_id=project.id, now=utcnow())
            assert shown is not None
            stored = lean.record(session, token_hash=digest, project_id=project.id, lease_id=shown.lease_id,
                                 form=JudgementIn(choice="a", strength=2), now=utcnow())
            assert stored is not None
        finally:
            lean.Plain.cursor = plain_cursor  # type: ignore[method-assign]
        raw = conn.connection.driver_connection
        assert raw is not None
        for statement, parameters in statements:
            with raw.cursor() as cursor:
                cursor.execute("SAVEPOINT explain")
                cursor.execute(f"EXPLAIN {statement}", parameters)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                cursor.execute("ROLLBACK TO SAVEPOINT explain")
            plans.append((statement, plan))
        session.close()
        transaction.rollback()
    return plans


def measure(server_url: str, items: int, cycles: int, report: Report,
            plans_out: Path | None) -> tuple[float, float]:
    with scratch_database(server_url) as engine:
        seconds = seed_pairwise(engine, items=items, k=K)
        open_slots(engine)
        with engine.begin() as conn:
            tokens = [raw for _, raw in seed_annotators(conn, project_id=PROJECT_ID, n=5, prefix="fresh")]
            fresh_id = int(conn.scalar(text("SELECT min(id) FROM users WHERE username LIKE 'fresh%'")))
            lean_token = tokens.pop()  # a fifth annotator, who has leased nothing yet
        report.note(f"{items:,} items, {items * K:,} judgements seeded in {seconds:.0f} s")
        url = engine.url.render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory() as tmp, \
                server(url, workers=1, log_path=Path(tmp) / "server.log", profile=None) as (port, _):
            next_ms, submit_ms = latencies(port, tokens, cycles)
        for label, values in (("next", next_ms), ("judgement", submit_ms)):
            report.note(f"{label:<9} at {items:>9,} items: median {statistics.median(values):6.1f} ms, "
                        f"p95 {percentile(values, 95):6.1f} ms, p99 {percentile(values, 99):6.1f} ms")
        if plans_out is not None:
            check_plans(captured_plans(engine, fresh_id, lean_token), plans_out, report)
        return statistics.median(next_ms), statistics.median(submit_ms)


def check_plans(plans: list[tuple[str, str]], out: Path, report: Report) -> None:
    scans = [f"{table}: {' '.join(statement.split())[:120]}" for statement, plan in plans
             for table in BIG_TABLES if f"Seq Scan on {table}" in plan]
    out.write_text("\n\n".join(f"-- {' '.join(s.split())}\n{p}" for s, p in plans) + "\n")
    report.note(f"{len(plans)} statements in one next + judgement, plans in {out}")
    for scan in scans:
        report.note(f"  sequential scan of {scan}")
    report.check("sequential scans of a big table (1M-item plans)", float(len(scans)), "= 0", not scans)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("server", nargs="?", default=None)
    args.add_argument("--small", type=int, default=10_000)
    args.add_argument("--large", type=int, default=1_000_000)
    args.add_argument("--cycles", type=int, default=300)
    args.add_argument("--plans", type=Path,
                      default=Path(tempfile.gettempdir()) / "prefstudio-scale-plans.sql")
    opts = args.parse_args()
    sys.argv[1:] = [opts.server] if opts.server else []
    report = Report(f"scale: next + judgement latency, {opts.small:,} vs {opts.large:,} items (k = {K})")
    small = measure(server_url(), opts.small, opts.cycles, report, None)
    large = measure(server_url(), opts.large, opts.cycles, report, opts.plans)
    for label, at_small, at_large in (("next", small[0], large[0]), ("judgement", small[1], large[1])):
        ratio = at_large / at_small
        report.check(f"{label}: median at {opts.large:,} / at {opts.small:,}", ratio,
                     f"<= {RATIO_TARGET}", ratio <= RATIO_TARGET, "x")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
