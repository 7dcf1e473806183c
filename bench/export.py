"""Export 1M judgements (200k pair items, 5 annotators each) to TRL JSONL with its dataset card.

Usage: python bench/export.py [DATABASE_URL] [--items N] [--k K] [--aggregation A]
(default: TEST_DATABASE_URL, else local postgres; 200,000 items x 5 = 1M judgements, majority).
Creates and drops its own database. Prints each figure beside its target; exits 1 on a miss.
Targets (issue 4): at least 100k judgements exported per second, end to end (the rows read from Postgres,
aggregated, written as lines to a file, hashed for the card); peak RSS growth under 100 MB while it runs
(the stream holds one chunk of rows, never the project).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _seeding import DEFAULT_URL, PROJECT_ID, scratch_database, seed_pairwise
from sqlalchemy.orm import Session, sessionmaker

import app.models  # noqa: F401  (registers every table)
from app.db import normalize_url, utcnow
from app.export import service as export_service
from app.export.schemas import ExportOptions

TARGET_ROWS_PER_S = 100_000
TARGET_RSS_MB = 100.0


def rss_mb() -> float:
    """This process's resident memory now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark (VmHWM) to the RSS now, so that the peak covers the export alone
    (the migrations before it peak higher than the export); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """The peak RSS since the last reset (VmHWM), else since the process started."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("url", nargs="?", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_URL))
    args.add_argument("--items", type=int, default=200_000)
    args.add_argument("--k", type=int, default=5)
    args.add_argument("--aggregation", default="majority")
    opts = args.parse_args()
    judgements = opts.items * opts.k
    with scratch_database(normalize_url(opts.url)) as engine, tempfile.TemporaryDirectory() as tmp:
        seeded = seed_pairwise(engine, items=opts.items, k=opts.k)
        print(f"seeded {judgements:,} judgements on {opts.items:,} items in {seeded:.0f} s")
        factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        options = ExportOptions(format="trl", aggregation=opts.aggregation)
        with Session(engine) as session:
            plan = export_service.plan_export(session, project_id=PROJECT_ID, options=options)
        out = Path(tmp) / "bench.jsonl"
        reset = reset_peak_rss()
        baseline, started, cpu = rss_mb(), time.perf_counter(), time.process_time()
        run = export_service.start(plan, factory=factory, secret="bench", now=utcnow())
        with out.open("w", encoding="utf-8") as handle:
            export_service.write_export(run, handle, card_stem=Path(tmp) / "bench")
        seconds, spent = time.perf_counter() - started, time.process_time() - cpu
        growth = peak_rss_mb() - baseline
        card = run.card()
        size = out.stat().st_size
    rate = judgements / seconds
    counts = card["counts"]
    print(f"  {counts['lines']:,} lines ({size / 2**20:.0f} MiB) from {counts['judgements']:,} "
          f"judgements in {seconds:.2f} s wall, {spent:.2f} s CPU; {opts.aggregation}")
    print(f"  (load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    fast, flat = rate >= TARGET_ROWS_PER_S, growth < TARGET_RSS_MB
    print(f"rows/s: {rate:,.0f} judgements/s, target >= {TARGET_ROWS_PER_S:,}: {'ok' if fast else 'MISS'}")
    since = "the export started" if reset else "the process started (the peak mark could not be reset)"
    print(f"peak RSS growth: {growth:.1f} MB (from {baseline:.0f} MB; peak since {since}), "
          f"target < {TARGET_RSS_MB:.0f} MB: {'ok' if flat else 'MISS'}")
    return 0 if fast and flat else 1


if __name__ == "__main__":
    sys.exit(main())
