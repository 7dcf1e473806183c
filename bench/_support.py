"""Shared by the bench scripts (not a benchmark itself: `make bench` skips files starting with "_").

A throwaway database per run (created on the server of TEST_DATABASE_URL or --server-url, migrated,
dropped at the end), fast seeding with INSERT ... SELECT generate_series, and figure/target reporting.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import migrate  # noqa: E402
from app.db import make_engine, normalize_url  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def parser(description: str) -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--server-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER),
                      help="a Postgres server this run may create and drop a database on "
                           "(default: $TEST_DATABASE_URL, else %(default)s)")
    return args


def _admin(server: str) -> Engine:
    return create_engine(make_url(normalize_url(server)).set(database="postgres"),
                         isolation_level="AUTOCOMMIT")


@contextmanager
def scratch_database(server: str, prefix: str) -> Iterator[str]:
    """A freshly migrated database on `server` for the block; dropped afterwards, also on failure."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = _admin(server)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalize_url(server)).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def seed_annotators(conn: Connection, *, project_id: int, n: int, prefix: str = "annotator") -> list[
        tuple[int, str]]:
    """`n` annotators, members of the project, each with an API token; returns (user id, raw token)."""
    ids = conn.scalars(text(
        "INSERT INTO users (username, display_name, password_hash, role, is_active) "
        "SELECT :prefix || g, :prefix || ' ' || g, '!', 'annotator', true FROM generate_series(1, :n) g "
        "RETURNING id"), {"prefix": prefix, "n": n}).all()
    tokens = [(user_id, f"ps_bench_{user_id}_{uuid.uuid4().hex}") for user_id in sorted(ids)]
    conn.execute(text("INSERT INTO project_members (project_id, user_id) VALUES (:p, :u)"),
                 [{"p": project_id, "u": user_id} for user_id, _ in tokens])
    conn.execute(text("INSERT INTO api_tokens (user_id, name, prefix, token_hash) "
                      "VALUES (:u, 'bench', :pre, :h)"),
                 [{"u": user_id, "pre": raw[:10], "h": token_digest(raw)} for user_id, raw in tokens])
    return tokens


def seed_project(conn: Connection, *, name: str, overlap_k: int, lease_minutes: int = 30) -> int:
    return int(conn.scalar(text(
        "INSERT INTO projects (name, description, mode, attributes, overlap_k, lease_minutes, "
        "candidates_per_prompt, generation) VALUES (:name, '', 'pairwise', '[]', :k, :lease, 2, '{}') "
        "RETURNING id"), {"name": name, "k": overlap_k, "lease": lease_minutes}))


def seed_pair_items(conn: Connection, *, project_id: int, n: int, overlap_k: int) -> None:
    """`n` prompts with two candidates each and one pair item per prompt, `overlap_k` open slots each."""
    conn.execute(text(
        "INSERT INTO prompts (project_id, messages, meta) "
        "SELECT :p, jsonb_build_array(jsonb_build_object('role', 'user', 'content', "
        "'Explain item ' || g || ' in two sentences.')), '{}' FROM generate_series(1, :n) g"),
        {"p": project_id, "n": n})
    conn.execute(text(
        "INSERT INTO candidates (prompt_id, text, source, config_key, sample_index, model, revision, params) "
        "SELECT p.id, 'Answer ' || s || ' to prompt ' || p.id || ': ' || repeat('lorem ipsum ', 20), "
        "'import', 'import', s, '', '', '{}' FROM prompts p CROSS JOIN generate_series(0, 1) s "
        "WHERE p.project_id = :p"), {"p": project_id})
    conn.execute(text(
        "INSERT INTO items (project_id, prompt_id, kind, candidate_a_id, candidate_b_id, open_slots, "
        "judgement_count, purpose) "
        "SELECT :p, c.prompt_id, 'pair', min(c.id), max(c.id), :k, 0, 'regular' FROM candidates c "
        "JOIN prompts p ON p.id = c.prompt_id WHERE p.project_id = :p GROUP BY c.prompt_id"),
        {"p": project_id, "k": overlap_k})


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: the value below which q% of the samples lie."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Report:
    """Figures beside their targets; `failed` when any target was missed."""

    title: str
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def check(self, label: str, value: float, target: str, ok: bool, unit: str = "") -> None:
        verdict = "ok" if ok else "MISSED"
        self.lines.append(f"  {label:<52} {value:>12,.2f} {unit:<6} target {target:<14} {verdict}")
        self.failed = self.failed or not ok

    def note(self, line: str) -> None:
        self.lines.append(f"  {line}")

    def finish(self) -> int:
        print(f"== {self.title} ({machine()})")
        print("\n".join(self.lines))
        print(f"== {'FAILED: a target was missed' if self.failed else 'all targets met'}")
        return 1 if self.failed else 0


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "? GiB"
    return f"{os.cpu_count()} cores, {model}, {memory} RAM, Python {platform.python_version()}"
