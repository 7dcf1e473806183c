"""Serving: C annotators loop "next item -> judgement" over HTTP against a real uvicorn server on Postgres.

The server is a separate process (`python -m app.cli serve --workers N` on 127.0.0.1, a scratch
database); this process plays the annotators with asyncio (one keep-alive connection and one API token
each). Targets on a 2-core machine: >= 300 judgements/s at C = 32 with p99 < 250 ms, p99 < 1 s at
C = 128. Afterwards the database must show every 201 stored once, no (item, annotator) twice and no item
over k, with slot accounting intact.

    python bench/serving.py [--workers 2] [--concurrency 32,128] [--duration 15]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _http import Connection
from _support import (
    ROOT,
    Report,
    parser,
    percentile,
    scratch_database,
    seed_annotators,
    seed_pair_items,
    seed_project,
)
from sqlalchemy import create_engine, text

THROUGHPUT_TARGET = 300.0  # judgements per second at C = 32
P99_TARGETS_MS = {32: 250.0, 128: 1000.0}


@dataclass
class Stats:
    started: float
    measure_from: float
    measure_until: float
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    measured_judgements: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ran_dry: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def seed(url: str, *, items: int, annotators: int, overlap_k: int) -> tuple[int, list[tuple[int, str]]]:
    engine = create_engine(url)
    with engine.begin() as conn:
        project_id = seed_project(conn, name="serving bench", overlap_k=overlap_k)
        seed_pair_items(conn, project_id=project_id, n=items, overlap_k=overlap_k)
        tokens = seed_annotators(conn, project_id=project_id, n=annotators)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return project_id, tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(url: str, *, workers: int, log_path: Path, profile: Path | None) -> Iterator[tuple[int, int]]:
    """A `prefstudio serve` process on a free port; yields (port, pid). Stopped with SIGTERM."""
    port = free_port()
    env = {**os.environ, "PREFSTUDIO_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
           "PREFSTUDIO_DATA_DIR": tempfile.mkdtemp(prefix="prefstudio-bench-")}
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-access-log"]
    if workers != 1:
        command += ["--workers", str(workers)]
    if profile is not None:
        command[1:3] = [str(ROOT / "bench" / "_profile.py")]
        env["PREFSTUDIO_PROFILE_OUT"] = str(profile)
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc, log_path)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within 60 s:\n{log_path.read_text()[-3000:]}")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (from /proc; 0 for a process that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def postgres_cpu() -> dict[int, float]:
    """User + system CPU of every process named postgres on this machine, by pid (the server under test
    when it runs here)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().partition(") ")
        except OSError:
            continue
        if head.endswith("(postgres"):
            fields = rest.split()
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def postgres_cpu_since(before: dict[int, float]) -> float:
    """Postgres CPU spent since `before` by the processes alive now (the server's pooled backends live
    through a run; other clients' backends that ended meanwhile are left out)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu().items())


async def annotator(port: int, project_id: int, token: str, stats: Stats, seed: int) -> None:
    """One annotator: next -> judgement until the measuring window closes (never cut mid-request)."""
    rng = random.Random(seed)
    conn = Connection("127.0.0.1", port, {"Authorization": f"Bearer {token}"})
    base = f"/api/v1/projects/{project_id}"
    try:
        while time.perf_counter() < stats.measure_until:
            t0 = time.perf_counter()
            status, body = await conn.request("GET", base + "/next")
            t1 = time.perf_counter()
            if status == 204:
                stats.ran_dry += 1
                return
            if status != 200:
                stats.error(f"next {status}")
                await asyncio.sleep(0.05)
                continue
            item = json.loads(body)
            choice = rng.choice(("a", "b", "a", "b", "tie"))
            payload = {"choice": choice, "strength": rng.randint(1, 3) if choice != "tie" else None,
                       "seconds": round(rng.uniform(5, 60), 1), "idempotency_key": item["idempotency_key"]}
            status, body = await conn.request("POST", f"{base}/leases/{item['lease_id']}/judgement",
                                              json.dumps(payload).encode())
            t2 = time.perf_counter()
            if status == 201:
                stats.created_ids.append(json.loads(body)["id"])
            else:
                stats.error(f"judgement {status}")
            if stats.measure_from <= t0 and t2 <= stats.measure_until:
                stats.next_ms.append((t1 - t0) * 1000)
                stats.submit_ms.append((t2 - t1) * 1000)
                stats.measured_judgements += status == 201
    finally:
        await conn.close()


async def load(port: int, project_id: int, tokens: list[str], *, warmup: float, duration: float) -> Stats:
    now = time.perf_counter()
    stats = Stats(started=now, measure_from=now + warmup, measure_until=now + warmup + duration)
    await asyncio.gather(*(annotator(port, project_id, token, stats, seed)
                           for seed, token in enumerate(tokens)))
    return stats


def check_database(url: str, project_id: int, overlap_k: int, created_ids: list[int], report: Report) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = set(conn.scalars(text("SELECT id FROM judgements WHERE project_id = :p"), {"p": project_id}))
        twice = conn.scalar(text(
            "SELECT count(*) FROM (SELECT 1 FROM judgements WHERE project_id = :p "
            "GROUP BY item_id, annotator_id, is_repeat HAVING count(*) > 1) d"), {"p": project_id})
        over_k = conn.scalar(text(
            "SELECT count(*) FROM (SELECT item_id FROM judgements WHERE project_id = :p AND NOT is_repeat "
            "GROUP BY item_id HAVING count(*) > :k) o"), {"p": project_id, "k": overlap_k})
        slots_off = conn.scalar(text(
            "SELECT count(*) FROM items i WHERE i.project_id = :p AND (i.open_slots < 0 OR i.open_slots + "
            "(SELECT count(*) FROM leases l WHERE l.item_id = i.id AND NOT l.skipped AND NOT l.is_repeat) "
            "<> :k OR i.judgement_count <> (SELECT count(*) FROM judgements j WHERE j.item_id = i.id "
            "AND NOT j.is_repeat))"), {"p": project_id, "k": overlap_k})
    engine.dispose()
    answered = set(created_ids)
    report.check("201 responses", len(created_ids), "= stored",
                 len(answered) == len(created_ids) == len(stored))
    report.check("judgements stored but never answered 201", len(stored - answered), "0", stored == answered)
    report.check("201s not stored (lost)", len(answered - stored), "0", not answered - stored)
    report.check("(item, annotator) judged twice", twice or 0, "0", not twice)
    report.check(f"items over k = {overlap_k}", over_k or 0, "0", not over_k)
    report.check("items whose slots or counts disagree", slots_off or 0, "0", not slots_off)


def run_level(report: Report, port: int, pid: int, project_id: int, tokens: list[str], *, warmup: float,
              duration: float) -> list[int]:
    concurrency = len(tokens)
    cpu_server, cpu_self, cpu_pg = tree_cpu_seconds(pid), time.process_time(), postgres_cpu()
    stats = asyncio.run(load(port, project_id, tokens, warmup=warmup, duration=duration))
    cpu_server, cpu_self = tree_cpu_seconds(pid) - cpu_server, time.process_time() - cpu_self
    cpu_pg_spent = postgres_cpu_since(cpu_pg)
    rate = stats.measured_judgements / duration
    p99 = max(percentile(stats.next_ms, 99), percentile(stats.submit_ms, 99))
    target_ms = P99_TARGETS_MS.get(concurrency, 1000.0)
    report.note(f"C = {concurrency}: {len(stats.created_ids)} judgements in {warmup + duration:.0f} s "
                f"({warmup:.0f} s warm-up not measured)")
    if concurrency == 32:
        report.check("judgements/s at C = 32", rate, f">= {THROUGHPUT_TARGET:.0f}", rate >= THROUGHPUT_TARGET)
    else:
        report.note(f"  judgements/s: {rate:,.1f}")
    for name, values in (("next", stats.next_ms), ("judgement", stats.submit_ms)):
        report.note(f"  {name:<9} median {percentile(values, 50):7.1f} ms"
                    f"  p95 {percentile(values, 95):7.1f} ms"
                    f"  p99 {percentile(values, 99):7.1f} ms  max {max(values, default=0):7.1f} ms")
    report.check(f"p99 latency at C = {concurrency} (worse of next, judgement)", p99,
                 f"< {target_ms:.0f}", p99 < target_ms, "ms")
    report.check(f"error responses at C = {concurrency}", sum(stats.errors.values()), "0", not stats.errors)
    report.check(f"annotators who ran out of items at C = {concurrency}", stats.ran_dry, "0",
                 not stats.ran_dry)
    if stats.errors:
        report.note(f"  errors: {stats.errors}")
    judged = max(len(stats.created_ids), 1)
    report.note(f"  CPU per judgement: server {cpu_server / judged * 1000:.2f} ms, "
                f"Postgres {cpu_pg_spent / judged * 1000:.2f} ms, "
                f"load generator {cpu_self / judged * 1000:.2f} ms")
    return stats.created_ids


def main() -> int:
    args = parser(__doc__.split("\n\n")[0])
    args.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default %(default)s)")
    args.add_argument("--concurrency", default="32,128", help="annotator counts, comma separated")
    args.add_argument("--duration", type=float, default=15.0, help="measured seconds per level")
    args.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    args.add_argument("--items", type=int, default=40_000)
    args.add_argument("--overlap-k", type=int, default=3)
    args.add_argument("--profile", type=Path,
                      help="CPU-profile the server (bench/_profile.py) into this file")
    opts = args.parse_args()
    levels = [int(c) for c in opts.concurrency.split(",")]
    report = Report(f"serving: uvicorn --workers {opts.workers}, k = {opts.overlap_k}, {opts.items:,} items")
    with scratch_database(opts.server_url, "bench_serving") as url:
        project_id, tokens = seed(url, items=opts.items, annotators=max(levels), overlap_k=opts.overlap_k)
        created: list[int] = []
        log_path = Path(tempfile.mkdtemp(prefix="prefstudio-bench-log-")) / "server.log"
        with server(url, workers=opts.workers, log_path=log_path, profile=opts.profile) as (port, pid):
            for concurrency in levels:
                created += run_level(report, port, pid, project_id, [t for _, t in tokens[:concurrency]],
                                     warmup=opts.warmup, duration=opts.duration)
        check_database(url, project_id, opts.overlap_k, created, report)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
