"""The annotation hot path in one process: CPU and SQL statements per "next item -> judgement" cycle.

No server, no sockets: the app is called through httpx's ASGI transport, one cycle at a time, so the
process CPU per cycle is the app's own cost (plus a little of httpx's) and no other load on a shared
machine leaks into it. Every statement sent to Postgres is counted (BEGIN/COMMIT/SAVEPOINT included).
A profiling helper, not a benchmark (no target): use it to see what a change to the hot path saves.

    python bench/_hotpath.py [--cycles 400] [--profile out.prof]
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _support import parser, scratch_database, seed_annotators, seed_pair_items, seed_project
from sqlalchemy import create_engine, event

from app.annotation import lean
from app.config import Settings
from app.main import create_app


def seed(url: str, annotators: int) -> tuple[int, list[str]]:
    engine = create_engine(url)
    with engine.begin() as conn:
        project_id = seed_project(conn, name="hot path", overlap_k=3)
        seed_pair_items(conn, project_id=project_id, n=5_000, overlap_k=3)
        tokens = [raw for _, raw in seed_annotators(conn, project_id=project_id, n=annotators)]
    engine.dispose()
    return project_id, tokens


async def cycle(client: httpx.AsyncClient, project_id: int, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    got = await client.get(f"/api/v1/projects/{project_id}/next", headers=headers)
    assert got.status_code == 200, got.text
    item = got.json()
    body = {"choice": "a", "strength": 2, "seconds": 12.5, "idempotency_key": item["idempotency_key"]}
    sent = await client.post(f"/api/v1/projects/{project_id}/leases/{item['lease_id']}/judgement",
                             content=json.dumps(body),
                             headers={**headers, "Content-Type": "application/json"})
    assert sent.status_code == 201, sent.text


def _profile_new_threads(profiles: list[cProfile.Profile]) -> None:
    """A CPU-clock cProfile in every thread started from now on (the threadpool's workers)."""
    def start(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        prof = cProfile.Profile(time.thread_time)
        profiles.append(prof)
        prof.enable()

    threading.setprofile(start)


def _dump(profiles: list[cProfile.Profile], out: Path) -> None:
    for prof in profiles:
        prof.disable()
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    stats.dump_stats(str(out))


async def run(url: str, cycles: int, profile: Path | None) -> None:
    project_id, tokens = seed(url, annotators=16)
    profiles: list[cProfile.Profile] = []
    if profile:
        _profile_new_threads(profiles)
    app = create_app(Settings(database_url=url))
    engine = app.state.session_factory.kw["bind"]
    statements: Counter[str] = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    plain_cursor = lean.Plain.cursor

    def counted(self: lean.Plain, db: Any, params: Any) -> Any:  # the lean path's statements
        statements[self.sql.split(None, 1)[0].upper()] += 1
        return plain_cursor(self, db, params)

    lean.Plain.cursor = counted  # type: ignore[method-assign]

    @event.listens_for(engine, "begin")
    def begin(conn: Any) -> None:
        statements["BEGIN"] += 1

    @event.listens_for(engine, "commit")
    def commit(conn: Any) -> None:
        statements["COMMIT"] += 1

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for i in range(50):  # warm up: pool connections, caches
            await cycle(client, project_id, tokens[i % len(tokens)])
        statements.clear()
        if profile:
            for prof in profiles:  # the threads sit idle between cycles: forget the warm-up
                prof.clear()
            main_profile = cProfile.Profile(time.thread_time)
            profiles.append(main_profile)
            main_profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(cycles):
            await cycle(client, project_id, tokens[i % len(tokens)])
        if profile:
            _dump(profiles, profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    engine.dispose()
    total = sum(statements.values())
    print(f"{cycles} cycles: CPU {cpu / cycles * 1000:.2f} ms/cycle (wall {wall / cycles * 1000:.2f} ms), "
          f"{total / cycles:.2f} statements/cycle: "
          + ", ".join(f"{k} {v / cycles:.2f}" for k, v in statements.most_common()))


def main() -> None:
    args = parser(__doc__.split("\n\n")[0])
    args.add_argument("--cycles", type=int, default=400)
    args.add_argument("--profile", type=Path, help="cProfile the measured cycles into this file")
    opts = args.parse_args()
    with scratch_database(opts.server_url, "bench_hotpath") as url:
        asyncio.run(run(url, opts.cycles, opts.profile))


if __name__ == "__main__":
    main()
