"""The embedded Postgres: a real server, shared between processes and threads, restarted with its data."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from sqlalchemy import create_engine, text

from app.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError

ROOT = Path(__file__).resolve().parent.parent
AS_ROOT = os.geteuid() == 0


@contextmanager
def scratch_dir(fallback: Path) -> Iterator[Path]:
    """As root the server runs as another user, who must traverse the parents of its data dir for as long
    as it runs; a concurrent pytest session resets /tmp/pytest-of-root to 0700, so root uses its own."""
    if not AS_ROOT:
        yield fallback
        return
    path = Path(tempfile.mkdtemp(prefix="prefstudio-pgtest-"))
    try:
        yield path
    finally:
        EmbeddedPostgres(path).stop(force=True)  # a test that failed half-way may have left it running
        shutil.rmtree(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with scratch_dir(tmp_path_factory.mktemp("shared")) as path, EmbeddedPostgres(path, durable=False) as pg:
        yield pg


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    with scratch_dir(tmp_path) as path:
        yield path


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    # The same URL without SQLAlchemy's driver suffix is a libpq URI.
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def fetch(url: str, query: LiteralString) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return conn.execute(query).fetchall()


def test_url_works_with_sqlalchemy_and_listens_on_no_tcp_port(server: EmbeddedPostgres) -> None:
    engine = create_engine(server.url)
    with engine.connect() as conn:
        assert conn.execute(text("select 1")).scalar_one() == 1
        assert conn.execute(text("select current_database()")).scalar_one() == "prefstudio"
        assert conn.execute(text("show listen_addresses")).scalar_one() == ""
    engine.dispose()


def test_skip_locked_hands_each_connection_a_different_row(server: EmbeddedPostgres) -> None:
    with connect(server.url) as setup:
        setup.execute("create table skip_jobs (id int primary key)")
        setup.execute("insert into skip_jobs values (1), (2)")
    claim = "select id from skip_jobs order by id limit 1 for update skip locked"
    try:
        with connect(server.url) as first, connect(server.url) as second:
            first.execute("begin")
            second.execute("begin")
            assert first.execute(claim).fetchall() == [(1,)]
            assert second.execute(claim).fetchall() == [(2,)]
            assert fetch(server.url, claim) == []
            first.execute("rollback")
            second.execute("rollback")
    finally:
        with connect(server.url) as cleanup:
            cleanup.execute("drop table skip_jobs")


def test_jsonb_round_trips_and_answers_containment(server: EmbeddedPostgres) -> None:
    with connect(server.url) as conn:
        row = conn.execute("""select '{"chosen": "a", "scores": [1, 2]}'::jsonb -> 'scores',
                                     '{"chosen": "a", "x": 1}'::jsonb @> '{"chosen": "a"}'""").fetchone()
    assert row == ([1, 2], True)


def test_second_handle_reuses_the_live_server_and_never_stops_it(server: EmbeddedPostgres) -> None:
    other = EmbeddedPostgres(server.data_dir, durable=False)
    assert other.start() == server.url
    assert not other.started_here
    other.stop()
    assert fetch(server.url, "select 1") == [(1,)]


def test_another_process_reuses_the_server(server: EmbeddedPostgres) -> None:
    probe = ("import sys; from pathlib import Path; from app.embedded_pg import EmbeddedPostgres; "
             "pg = EmbeddedPostgres(Path(sys.argv[1])); print(pg.start(), pg.started_here); pg.stop()")
    done = subprocess.run([sys.executable, "-W", "error", "-c", probe, str(server.data_dir)], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == [server.url, "False"]
    assert fetch(server.url, "select 1") == [(1,)]


def test_restart_keeps_the_data(base: Path) -> None:
    with EmbeddedPostgres(base, durable=False) as pg, connect(pg.url) as conn:
        conn.execute("create table kept (note text)")
        conn.execute("insert into kept values ('still here')")
    assert not (base / "pg" / "postmaster.pid").exists()
    with EmbeddedPostgres(base, durable=False) as again, connect(again.url) as conn:
        assert again.started_here
        assert conn.execute("select note from kept").fetchall() == [("still here",)]


def test_concurrent_starts_share_one_server(base: Path) -> None:
    handles = [EmbeddedPostgres(base, durable=False) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        urls = set(pool.map(EmbeddedPostgres.start, handles))
    assert len(urls) == 1
    assert [handle.started_here for handle in handles].count(True) == 1
    for handle in sorted(handles, key=lambda handle: handle.started_here):
        handle.stop()
    assert not (base / "pg" / "postmaster.pid").exists()


def test_orphaned_server_is_adopted_and_stopped_by_the_adopter(base: Path) -> None:
    deep = base / ("long-directory-name-" * 5)  # too long for a socket path inside it
    first = EmbeddedPostgres(deep, durable=False)
    url = first.start()
    assert f"host={deep}" not in url
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    first.owner_file.write_text(dead.stdout.strip())  # as if its starter had been killed
    adopter = EmbeddedPostgres(deep, durable=False)
    assert adopter.start() == url
    assert adopter.started_here
    adopter.stop()
    assert not (deep / "pg" / "postmaster.pid").exists()
    assert not Path(url.split("host=")[1].split("&")[0]).exists()  # the short socket directory is gone
    first.stop()  # already stopped: nothing to do, no error


def test_start_failure_names_the_log_and_quotes_it(base: Path) -> None:
    EmbeddedPostgres(base, durable=False).start()
    EmbeddedPostgres(base).stop(force=True)
    with (base / "pg" / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    with pytest.raises(EmbeddedPostgresError, match="shared_buffers") as caught:
        EmbeddedPostgres(base, durable=False).start()
    assert caught.value.log_path == base / "pg" / "server.log"
    assert str(base / "pg" / "server.log") in str(caught.value)


@pytest.mark.skipif(not AS_ROOT, reason="only root needs another user for the server")
def test_as_root_the_server_runs_as_an_unprivileged_user(server: EmbeddedPostgres) -> None:
    postmaster_pid = (server.pgdata / "postmaster.pid").read_text().split()[0]
    assert server.pgdata.stat().st_uid != 0
    assert Path(f"/proc/{postmaster_pid}").stat().st_uid == server.pgdata.stat().st_uid


def others_can_reach(path: Path) -> bool:
    return all(parent.stat().st_mode & 0o001 for parent in Path(os.path.realpath(path)).parents)


@pytest.mark.skipif(not AS_ROOT, reason="run as a normal user, every other test already is this test")
@pytest.mark.skipif(not (others_can_reach(Path(sys.executable)) and others_can_reach(ROOT / "app")),
                    reason="the interpreter or the checkout is private to root")
def test_a_normal_user_can_run_it(base: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    data_dir = base / "nobody"
    data_dir.mkdir()
    os.chown(data_dir, nobody.pw_uid, nobody.pw_gid)
    base.chmod(0o701)  # traverse only
    probe = ("import os, sys, psycopg; from pathlib import Path\n"
             "from app.embedded_pg import EmbeddedPostgres\n"
             "with EmbeddedPostgres(Path(sys.argv[1]), durable=False) as pg:\n"
             "    url = pg.url.replace('postgresql+psycopg', 'postgresql')\n"
             "    with psycopg.connect(url) as conn:\n"
             "        print(os.geteuid(), conn.execute('select 1').fetchone())")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-W", "error", "-c", probe, str(data_dir)], cwd=ROOT, env=env,
                          user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(nobody.pw_uid), "(1,)"]
    assert (data_dir / "pg").stat().st_uid == nobody.pw_uid
