"""Scale: next-item and submit latency at 10k items and at 1M items with 5M judgements.

Each scale gets its own database seeded by Postgres itself (bench/_seeding.py: k = 5 annotators have
judged every item), then every 10th item gets one more open slot (k = 6) for fresh annotators. A real
uvicorn server (bench/serving.py's) answers each. Both scales are up at once and measured in turns: each
round does one next -> judgement over HTTP on the small scale and one on the large (the order
alternating), one request at a time, so the figures are latencies, not contention, and the machine's
drift (other jobs, a busy core: at 2-5 ms a request it moved medians by 3x between runs minutes apart)
hits both alike. Target: the median of each at 1M items within 1.5x of its value at 10k items. The
queries of both requests (general and lean path) are captured and EXPLAINed on the large database: none
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _seeding import PROJECT_ID, scratch_database, seed_pairwise, server_url
from _support import Report, percentile, seed_annotators
from serving import server as serve
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
    # A live project's tables are vacuumed (autovacuum) and checkpointed; a bulk load leaves 5M rows with
    # no hint bits or visibility map and gigabytes of dirty pages, whose write-back would be measured too.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CHECKPOINT"))


@dataclass
class Scale:
    """One scale, seeded and served: its database, its server's port, annotators' tokens."""

    items: int
    engine: Engine
    port: int
    tokens: list[str]  # four fresh annotators, who loop
    fresh_id: int  # the first of them (its plans are captured)
    lean_token: str  # a fifth, who has leased nothing yet
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)


def prepared(stack: ExitStack, server: str, items: int, report: Report) -> Scale:
    engine = stack.enter_context(scratch_database(server))
    seconds = seed_pairwise(engine, items=items, k=K)
    open_slots(engine)
    with engine.begin() as conn:
        tokens = [raw for _, raw in seed_annotators(conn, project_id=PROJECT_ID, n=5, prefix="fresh")]
        fresh_id = int(conn.scalar(text("SELECT min(id) FROM users WHERE username LIKE 'fresh%'")))
    report.note(f"{items:,} items, {items * K:,} judgements seeded in {seconds:.0f} s")
    url = engine.url.render_as_string(hide_password=False)
    log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "server.log"
    port, _ = stack.enter_context(serve(url, workers=1, log_path=log, profile=None))
    lean_token = tokens.pop()
    return Scale(items, engine, port, tokens, fresh_id, lean_token)


def latencies(scales: list[Scale], cycles: int) -> None:
    """`cycles` rounds of one next -> judgement on each scale in turn (first one scale, then the other),
    one request at a time, spread over each scale's annotators; 20 rounds first to warm up."""
    clients = {id(scale): [httpx.Client(headers={"Authorization": f"Bearer {t}"}, timeout=30)
                           for t in scale.tokens] for scale in scales}
    try:
        for n in range(cycles + 20):
            for scale in (scales if n % 2 == 0 else scales[::-1]):
                client = clients[id(scale)][n % len(scale.tokens)]
                next_ms, submit_ms = _cycle(client, scale.port)
                if n >= 20:
                    scale.next_ms.append(next_ms)
                    scale.submit_ms.append(submit_ms)
    finally:
        for each in clients.values():
            for client in each:
                client.close()


def _cycle(client: httpx.Client, port: int) -> tuple[float, float]:
    base = f"http://127.0.0.1:{port}/api/v1/projects/{PROJECT_ID}"
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
    return (middle - started) * 1000, (ended - middle) * 1000


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
        lean.Plain.cursor = capture_lean  # type: ignore[method-assign,assignment]
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


def note(scale: Scale, report: Report) -> None:
    for label, values in (("next", scale.next_ms), ("judgement", scale.submit_ms)):
        report.note(f"{label:<9} at {scale.items:>9,} items: median {statistics.median(values):6.1f} ms, "
                    f"p95 {percentile(values, 95):6.1f} ms, p99 {percentile(values, 99):6.1f} ms")


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
    with ExitStack() as stack:
        small = prepared(stack, server_url(), opts.small, report)
        large = prepared(stack, server_url(), opts.large, report)
        latencies([small, large], opts.cycles)
        note(small, report)
        note(large, report)
        check_plans(captured_plans(large.engine, large.fresh_id, large.lean_token), opts.plans, report)
    for label, at_small, at_large in (("next", small.next_ms, large.next_ms),
                                      ("judgement", small.submit_ms, large.submit_ms)):
        ratio = statistics.median(at_large) / statistics.median(at_small)
        report.check(f"{label}: median at {opts.large:,} / at {opts.small:,}", ratio,
                     f"<= {RATIO_TARGET}", ratio <= RATIO_TARGET, "x")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
