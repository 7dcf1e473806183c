"""Import: 100k prompts from JSONL through the same service the browser, the API and the CLI use
(parse, row checks, external-id lookups, COPY, items built from candidates, audit record, commit).

Two files: prompts alone (they wait for generation), and prompts that bring two written candidates
each (so every row also makes two candidates and one pair item). Target on a 2-core machine: >= 5,000
rows per second for each.

    python bench/import.py [--rows 100000]
"""

from __future__ import annotations

import json
import resource
import sys
import time

from _support import Report, parser, scratch_database, seed_project
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import sessionmaker

from app.accounts.models import User
from app.db import unit_of_work
from app.projects import service as projects_service
from app.projects.models import Item, Project

TARGET_ROWS_PER_S = 5_000.0


def jsonl(rows: int, *, candidates: bool, tag: str) -> bytes:
    lines = []
    for n in range(rows):
        row: dict[str, object] = {"prompt": f"Explain topic {n} of the {tag} file to a curious teenager.",
                                  "external_id": f"{tag}-{n}", "metadata": {"batch": tag, "n": n}}
        if candidates:
            row["candidates"] = [f"A first answer to topic {n}, " + "in plain words. " * 8,
                                 f"A second answer to topic {n}, " + "with an example. " * 8]
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--rows", type=int, default=100_000)
    options = args.parse_args()
    report = Report(f"import: {options.rows:,} JSONL rows per file through projects_service.import_prompts")
    with scratch_database(options.server_url, "bench_import") as url:
        engine = create_engine(url, pool_size=1)
        with engine.begin() as conn:
            project_id = seed_project(conn, name="import bench", overlap_k=3)
            conn.execute(text("INSERT INTO users (username, display_name, password_hash, role, is_active) "
                              "VALUES ('admin', 'Admin', '!', 'admin', true)"))
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        for label, with_candidates in (("prompts only", False), ("prompts + 2 candidates", True)):
            content = jsonl(options.rows, candidates=with_candidates, tag=label.split()[-1])
            started = time.perf_counter()
            with unit_of_work(factory) as session:
                project = session.get(Project, project_id)
                admin = session.scalar(select(User).where(User.username == "admin"))
                assert project is not None and admin is not None
                result = projects_service.import_prompts(session, project=project, filename="bench.jsonl",
                                                         content=content, actor=admin,
                                                         max_rows=options.rows)
            seconds = time.perf_counter() - started
            report.note(f"{label}: {result.imported:,} prompts, {result.candidates:,} candidates, "
                        f"{result.items:,} items in {seconds:.2f} s ({len(content) / 1e6:.1f} MB of JSONL)")
            rate = options.rows / seconds
            report.check(f"rows/s, {label}", rate, f">= {TARGET_ROWS_PER_S:,.0f}", rate >= TARGET_ROWS_PER_S)
        with factory() as session:
            items = session.scalar(select(func.count(Item.id)).where(Item.project_id == project_id))
        report.check("pair items built (one per row with candidates)", float(items or 0),
                     f"= {options.rows:,}", items == options.rows)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report.note(f"peak RSS of this process {peak:,.0f} MiB")
        engine.dispose()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
